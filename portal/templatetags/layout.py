"""What the base layout needs to know about the page: refused forms, the current section;
and the parts of it that are the same on every page, written once."""

import enum
import weakref
from functools import cache

from django import template
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.forms import BaseForm, BaseFormSet
from django.template import Context
from django.template.base import token_kwargs
from django.template.loader_tags import BlockNode
from django.templatetags.static import static
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import get_language, get_language_info

register = template.Library()


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
def _forget_kept(*, setting, **kwargs):
    if setting in ("STORAGES", "STATIC_URL"):  # a test's: the URLs change with them
        _static.cache_clear()
    for node in _rendered_once_nodes:  # any setting may change what they show (a test's)
        node.kept.clear()


# The values a ``{% rendered_once %}`` block may take: ones whose equality means the same
# text (not a safe string equal to an unsafe one, nor a lazy or mutable object).
_PLAIN = frozenset((str, int, bool, type(None)))
_rendered_once_nodes = weakref.WeakSet()


class RenderedOnceNode(template.Node):
    """See ``rendered_once``."""

    MAX_KEPT = 256  # versions of one block kept at most (a role, a section, an unread count...)
    # Not walked for a page's {% block %}s (which ``{% extends %}`` does at every request):
    # a block in it would not be the page's anyway.
    child_nodelists = ()

    def __init__(self, nodelist, inputs):
        self.nodelist, self.inputs, self.kept = nodelist, inputs, {}
        _rendered_once_nodes.add(self)

    def render(self, context):
        values = {}
        for name, expression in self.inputs.items():
            value = expression.resolve(context)
            if isinstance(value, enum.Enum):  # a choice (a role): its value, which it renders as
                value = value.value
            values[name] = value
            if type(value) not in _PLAIN:
                raise template.TemplateSyntaxError(
                    f"rendered_once: {name} is a {type(value).__name__}; only str, int, bool and None are allowed"
                )
        key = (
            get_language(),
            get_urlconf() or settings.ROOT_URLCONF,
            get_script_prefix(),
            context.autoescape,
            *sorted(values.items()),
        )
        text = self.kept.get(key)
        if text is None:
            # Only its inputs: no request, user or page value can be in what is kept.
            own = Context(values, autoescape=context.autoescape, use_l10n=context.use_l10n, use_tz=context.use_tz)
            own.template = context.template  # what an {% include %} in it is looked up with
            text = self.nodelist.render(own)
            if len(self.kept) >= self.MAX_KEPT:  # start again: what is in use comes back
                self.kept.clear()
            self.kept[key] = text
        return text


@register.tag
def rendered_once(parser, token):
    """``{% rendered_once name=value ... %}...{% endrendered_once %}``: a part of the layout
    that is the same on every page (its links, labels and menus), rendered once per
    language, URLconf and set of values, then sent as it was. It is rendered with its named
    values only (str, int, bool or None): a variable of the page or the request in it is
    empty, so nothing of one request can be kept for another."""
    bits = token.split_contents()[1:]
    inputs = token_kwargs(bits, parser, support_legacy=False)
    if bits:
        raise template.TemplateSyntaxError(f"rendered_once takes name=value arguments only, not {bits[0]!r}")
    nodelist = parser.parse(("endrendered_once",))
    parser.delete_first_token()
    if nodelist.get_nodes_by_type(BlockNode):  # a page could not fill it in: say so now
        raise template.TemplateSyntaxError("rendered_once: a {% block %} in it would be the same on every page")
    return RenderedOnceNode(nodelist, inputs)


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
        url = reverse(name, urlconf=urlconf)  # once: the sections are kept
        pairs += [(url, url), *((start, url) for start in others)]
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


def _current_link(request) -> tuple[str, str]:
    """The URL of the navigation's current link and its aria-current value: "page" on the
    page it names, "true" anywhere else in its section (a conversation under the inbox);
    ("", "") outside every section. One link at most is current."""
    path, role = request.path, getattr(request.user, "role", None)
    for start, link in _sections(role, get_urlconf(), get_script_prefix()):
        if path.startswith(start):
            return link, "page" if path == link else "true"
    return "", ""


class NavigationNode(template.Node):
    def render(self, context):
        request, record = context.get("request"), context.get("current_record")
        parts = getattr(record, "parts", ())
        context["nav_current_url"], context["nav_current_kind"] = _current_link(request) if request else ("", "")
        context["nav_messages"], context["nav_agenda"] = "messages" in parts, "manage" in parts
        context["nav_own_record"] = bool(getattr(record, "is_own", False))
        return ""


@register.tag
def navigation(parser, token):
    """``{% navigation %}`` sets what the header's menu shows, as plain values for its
    ``{% rendered_once %}``: ``nav_current_url`` and ``nav_current_kind`` (see
    ``nav_current``), and for a patient-side user whether the record shows its messages
    (``nav_messages``) and appointments (``nav_agenda``) and whether it is their own."""
    return NavigationNode()


@register.simple_tag(takes_context=True)
def nav_current(context, url: str) -> str:
    """The aria-current attribute of a navigation link (``url``), from the values
    ``{% navigation %}`` set: nothing on a link that is not the current one."""
    if url != context["current_url"]:
        return ""
    return mark_safe(' aria-current="page"' if context["current_kind"] == "page" else ' aria-current="true"')  # noqa: S308 (constants)


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
