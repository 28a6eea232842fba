import sys
import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.template import loader
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext_lazy as _
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_safe

from portal import access
from portal.accounts.middleware import TERMS_SESSION_KEY
from portal.accounts.models import User
from portal.celery import app as celery_app
from portal.idempotency import idempotent
from portal.models import TermsAcceptance
from portal.support import services as support
from portal.support.forms import ContactForm
from records import services as records
from records.models import LabReport, Prescription
from reminders import services as reminders

HOME_BY_ROLE = {
    User.Role.PATIENT: "patient_home",
    User.Role.CLINICIAN: "careteams:patient_list",
    User.Role.SUPPORT: "support:home",
}


TRUST_PAGE_TITLES = {
    "help": _("Help"),
    "privacy": _("Privacy"),
    "terms": _("Terms of use"),
    "accessibility": _("Accessibility"),
}


def _trust_body(page):
    """Long prose (and legal text) is written once per language."""
    return f"portal/trust/{page}.{'en' if get_language() == 'en' else 'fr'}.html"


@require_GET
def trust_page(request, page):
    """Help, privacy notice, terms of use, accessibility statement: public, linked from
    every page's footer."""
    context = {"title": TRUST_PAGE_TITLES[page], "body": _trust_body(page), "operator": settings.OPERATOR}
    return render(request, "portal/trust/page.html", context)


@require_http_methods(["GET", "POST"])
@idempotent
def contact(request):
    """Contact support about an account, signed in or not (the sign-in and the
    deactivated-account pages send people here): a case in the support console,
    answered by email. A double submit makes one case; one address sends a few an hour."""
    user = request.user if request.user.is_authenticated else None
    initial = {"request_key": uuid.uuid4()}
    if user is not None:
        initial |= {"name": user.get_full_name(), "email": user.email}
    form = ContactForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            support.submit_request(
                fields={name: form.cleaned_data[name] for name in ("name", "email", "topic", "message")},
                user=user,
                address=request.META.get("REMOTE_ADDR", ""),
                language=get_language() or settings.LANGUAGE_CODE,
                request_key=form.cleaned_data["request_key"],
            )
        except support.TooManyRequests as limit:
            minutes = max(1, limit.retry_after // 60)
            form.add_error(
                None,
                ngettext(
                    "Several messages were sent from here lately. Try again in %(minutes)s minute, "
                    "or write to %(email)s.",
                    "Several messages were sent from here lately. Try again in %(minutes)s minutes, "
                    "or write to %(email)s.",
                    minutes,
                )
                % {"minutes": minutes, "email": settings.OPERATOR["support_email"]},
            )
        else:
            return redirect("contact_sent")
    return render(request, "portal/trust/contact.html", {"form": form, "operator": settings.OPERATOR})


@require_GET
def contact_sent(request):
    return render(request, "portal/trust/contact_sent.html", {"operator": settings.OPERATOR})


@login_required
@require_http_methods(["GET", "POST"])
@idempotent
def terms_accept(request):
    """The terms of use in force, to accept once per version (recorded; a double
    submit records once), then on to where the person was going."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = resolve_url("home")
    if request.method == "POST":
        TermsAcceptance.objects.get_or_create(user=request.user, version=settings.TERMS_VERSION)
        request.session[TERMS_SESSION_KEY] = settings.TERMS_VERSION
        return redirect(next_url)
    context = {"body": _trust_body("terms"), "next": next_url, "operator": settings.OPERATOR}
    return render(request, "portal/trust/accept_terms.html", context)


@login_required
@require_safe
def home(request):
    return redirect(HOME_BY_ROLE[request.user.role])


@access.role_required(User.Role.PATIENT)
@require_safe
def patient_home(request):
    patient = access.get_own_patient(request.user)
    conversations = (
        access.conversations_for(request.user)
        .select_related("team")
        .with_unread_for(request.user)
        .order_by("-last_message_at", "-pk")[:3]
    )
    documents = access.documents_visible_to(request.user).filter(patient=patient)[:3]
    prescriptions = (
        access.items_visible_to(request.user, Prescription)
        .filter(patient=patient, start_date__lte=timezone.localdate())
        .exclude(end_date__lt=timezone.localdate())
        .current(timezone.localdate())[:3]
    )
    reports = list(access.items_visible_to(request.user, LabReport).filter(patient=patient)[:3])
    documents, prescriptions = list(documents), list(prescriptions)
    context = {
        "reminders": reminders.shown_reminders(user=request.user, patient=patient),
        "new_documents": records.unseen_news_ids(patient=patient, field="document_id", items=documents),
        "new_prescriptions": records.unseen_news_ids(patient=patient, field="prescription_id", items=prescriptions),
        "new_reports": records.unseen_news_ids(patient=patient, field="lab_report_id", items=reports),
        "patient": patient,
        "conversations": conversations,
        "documents": documents,
        "prescriptions": prescriptions,
        "reports": reports,
    }
    return render(request, "portal/patient_home.html", context)


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache():
    if hasattr(cache, "check_primary"):  # Redis itself, not the database standing in for it
        cache.check_primary()
    nonce = uuid.uuid4().hex
    cache.set("healthz", nonce, 10)
    if cache.get("healthz") != nonce:
        raise RuntimeError("cache did not return what was written")


def _check_broker():
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)


CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}


@require_GET
@never_cache
@transaction.non_atomic_requests
def healthz(request):
    """Reachability of what a request needs, as JSON; 503 when any is down."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure means "down"; only its type is reported
            results[name] = f"error: {type(exc).__name__}"
        else:
            results[name] = "ok"
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse({"status": "ok" if healthy else "error", "checks": results}, status=200 if healthy else 503)


def server_error(request):
    """The 500 page; a 503 page saying nothing was saved when the database could not
    be reached or dropped the connection (the request's transaction was rolled back).
    Marks the request so that ``RetryReadOnLostDatabaseMiddleware`` may run a read again."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        request.database_lost = True
        return HttpResponse(loader.get_template("503.html").render(), status=503, headers={"Retry-After": "5"})
    return defaults.server_error(request)
