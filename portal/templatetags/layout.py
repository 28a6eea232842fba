"""What the base layout needs to know about the page: refused forms, the current section."""

from functools import cache

from django import template
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.forms import BaseForm, BaseFormSet
from django.templatetags.static import static
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import get_language, get_language_info

register = template.Library()


@cache
def _reversed(name, urlconf, prefix):
    return reverse(name, urlconf=urlconf)


@register.simple_tag
def route(name: str) -> str:
    """``{% url name %}`` for a route without arguments (the layout's links, on every
    page), reversed once per URLconf and script prefix instead of at every request."""
    return _reversed(name, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())


@cache
def _static(path, static_url):
    return static(path)


@register.simple_tag
def asset(path: str) -> str:
    """``{% static path %}`` for the layout's own files (on every page), worked out once
    per static URL instead of at every request: the storage's ``url()`` (in production,
    the manifest's lookup) cost as much as the rest of the page's head."""
    return _static(path, settings.STATIC_URL)


@receiver(setting_changed)
def _forget_assets(*, setting, **kwargs):
    if setting in ("STORAGES", "STATIC_URL"):  # a test's: the URLs change with them
        _static.cache_clear()


def _forms_in(value):
    # By type, not isinstance: isinstance would evaluate every lazy value of the context
    # (the unread badge, the records) even on a page that never shows it.
    if issubclass(type(value), BaseForm):
        yield value
    elif issubclass(type(value), BaseFormSet):  # its rows (a lab report's results)
        yield from value.forms
    elif type(value) is dict:  # e.g. the profile's {"allergy": form, ...}
        yield from (item for item in value.values() if issubclass(type(item), BaseForm))


@register.simple_tag(takes_context=True)
def page_has_form_errors(context) -> bool:
    """Whether any form the page shows was submitted and refused: the page title then
    says so (WCAG 3.3.1), whichever view and form it is."""
    return any(form.is_bound and form.errors for value in context.flatten().values() for form in _forms_in(value))


# The main navigation's links by role (as base.html has them), each with the paths of
# other pages that belong to its section: one link is the current section of a page,
# the one whose paths start the page's path longest ("/my/appointments/" over "/my/").
NAV_SECTIONS = {
    "patient": {
        "patient_home": ("/documents/", "/results/", "/measurements/"),
        "messaging:inbox": (),
        "agenda:mine": (),
        "accounts:security": (),
    },
    "clinician": {
        "careteams:patient_list": ("/documents/", "/results/", "/measurements/"),
        "agenda:team_day": ("/care/teams/", "/care/api-clients/"),  # the team's settings, reached from its agenda
        "messaging:team_inbox": ("/messages/",),  # a conversation, under the team inbox
        "accounts:security": (),
    },
    "support": {"support:home": (), "accounts:security": ()},
}


@cache
def _sections(role, urlconf, prefix):
    """(path start, the link's URL) of ``role``'s navigation, longest start first."""
    pairs = []
    for name, others in NAV_SECTIONS.get(role, {}).items():
        url = _reversed(name, urlconf, prefix)
        pairs += [(url, url), *((start, url) for start in others)]
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


@register.simple_tag(takes_context=True)
def nav_current(context, url: str) -> str:
    """The aria-current attribute of a navigation link: "page" on the page it names,
    "true" anywhere else in its section (a conversation under the inbox); nothing on the
    other links, so that one link at most is current."""
    request = context["request"]
    path = request.path
    if path == url:
        return mark_safe(' aria-current="page"')
    role = getattr(request.user, "role", None)
    for start, link in _sections(role, get_urlconf(), get_script_prefix()):
        if path.startswith(start):
            return mark_safe(' aria-current="true"') if link == url else ""
    return ""


@cache
def _language_options(current: str) -> str:
    return format_html_join(
        "",
        '<option value="{}" lang="{}"{}>{}</option>',
        (
            (
                code,
                code,
                mark_safe(" selected") if code == current else "",
                capfirst(get_language_info(code)["name_local"]),
            )
            for code, _name in settings.LANGUAGES
        ),
    )


@register.simple_tag
def language_options() -> str:
    """The language menu's options, the current language selected: written once per
    language (the same on every page), not looked up and looped over at every request."""
    return _language_options(get_language())
