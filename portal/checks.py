"""Carnet's own system checks, run by `manage.py check --deploy` (CI: `make check-deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def operator_named(app_configs, **kwargs):
    """In production, the privacy notice and the copies of flagged accesses name the
    operator and its data-protection contact: no placeholder may be left."""
    if settings.DEBUG:
        return []
    left = [
        settings.OPERATOR_ENV[key]
        for key, placeholder in settings.OPERATOR_PLACEHOLDERS.items()
        if not settings.OPERATOR.get(key, "").strip()
        or settings.OPERATOR[key] == placeholder
        or settings.OPERATOR[key].strip().lower().endswith((".localhost", ".invalid"))
    ]
    if not left:
        return []
    return [
        Warning(
            f"The operator's details are still placeholders: {', '.join(left)}.",
            hint="The privacy notice names the data controller and its data-protection officer, and the DPO "
            "is emailed of every access a patient flags: set these variables (README, Configuration).",
            id="carnet.W001",
        )
    ]


def _under(host: str, domain: str) -> bool:
    host = host.lstrip(".")
    return host == domain or host.endswith("." + domain)


@register(Tags.security, deploy=True)
def passkeys_bound_to_our_domain(app_configs, **kwargs):
    """A passkey works only on its relying party's domain: it must be one Carnet answers on."""
    if settings.DEBUG or not settings.ALLOWED_HOSTS:
        return []
    rp_id = settings.OTP_WEBAUTHN_RP_ID
    if "*" in settings.ALLOWED_HOSTS or any(_under(host, rp_id) for host in settings.ALLOWED_HOSTS):
        return []
    return [
        Warning(
            f"WEBAUTHN_RP_ID ({rp_id!r}) is not one of ALLOWED_HOSTS, nor a parent domain of one: "
            "no passkey could be made or used.",
            hint="Leave WEBAUTHN_RP_ID unset (the first host name of ALLOWED_HOSTS), or set the domain "
            "Carnet is served on. Changing it later makes every passkey unusable.",
            id="carnet.W002",
        )
    ]
