"""``{% url %}`` as Django writes it, each URL reversed once (see TEMPLATES' ``builtins``,
where this library comes after Django's own and so takes the tag's name).

A record page has a dozen of them (its tabs, its actions), and reversing walks the
URLconf's patterns for the route and checks its arguments against them: about a tenth
of what the page's template cost. The URL only changes with the route, its arguments,
the URLconf, the script prefix, the current namespace and the language, so it is kept
by those. Arguments other than strings and integers are reversed at each render.
"""

from functools import lru_cache

from django import template
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.defaulttags import URLNode, url
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString
from django.utils.translation import get_language

register = template.Library()

# A literal in the tag is a SafeString: equal to the str, and reversed the same.
_PLAIN = frozenset((str, SafeString, int))


@lru_cache(maxsize=4096)
def _reversed(view_name, args, kwargs, current_app, urlconf, prefix, language):
    return reverse(view_name, args=args, kwargs=dict(kwargs), current_app=current_app, urlconf=urlconf)


class KeptURLNode(URLNode):
    def render(self, context):
        args = tuple(arg.resolve(context) for arg in self.args)
        kwargs = tuple((name, value.resolve(context)) for name, value in self.kwargs.items())
        view_name = self.view_name.resolve(context)
        if not _PLAIN.issuperset(map(type, (view_name, *args, *(value for _, value in kwargs)))):
            return super().render(context)  # as Django does (a model instance's str, say)
        try:
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        # Django's own render for what does not reverse (an error, or "" with "as").
        try:
            found = _reversed(
                view_name,
                args,
                kwargs,
                current_app,
                get_urlconf() or settings.ROOT_URLCONF,
                get_script_prefix(),
                get_language(),
            )
        except Exception:  # NoReverseMatch, or a converter's error: Django's answer
            return super().render(context)
        if self.asvar:
            context[self.asvar] = found
            return ""
        return conditional_escape(found) if context.autoescape else found


@register.tag("url")
def kept_url(parser, token):
    node = url(parser, token)
    return KeptURLNode(node.view_name, node.args, node.kwargs, node.asvar)


kept_url.__doc__ = url.__doc__


@receiver(setting_changed)
def _forget(**kwargs):
    _reversed.cache_clear()  # a test's other URLconf, say
