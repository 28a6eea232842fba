"""Django's ``i18n`` tag library, in which ``{% translate "text" %}`` of a literal is
worked out once per language instead of at every render: the project's templates load
it (``{% load translations %}``) in place of ``{% load i18n %}``.

A page has dozens of them (headings, labels, buttons); each went through a lazy
translation, its escaping and its percent signs again at every request, about a tenth of
what a page's template cost. The text a literal translates to only changes with the
language (and the autoescaping), so that is what it is kept by. Anything else (a
variable, a filter, ``{% blocktranslate %}``) is Django's own tag, unchanged.
"""

import weakref

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags import i18n
from django.utils.translation import get_language

register = template.Library()
register.tags.update(i18n.register.tags)
register.filters.update(i18n.register.filters)

_nodes = weakref.WeakSet()


class TranslateOnceNode(i18n.TranslateNode):
    def __init__(self, filter_expression, noop, asvar=None, message_context=None):
        super().__init__(filter_expression, noop, asvar, message_context)
        literal = not self.filter_expression.filters and self.filter_expression.var.literal is not None
        # A context given as a quoted string is a constant (the expression's var is the text).
        constant_context = message_context is None or (
            isinstance(message_context.var, str) and not message_context.filters
        )
        self.kept = {} if literal and constant_context else None
        if self.kept is not None:
            _nodes.add(self)

    def render(self, context):
        if self.kept is None:
            return super().render(context)
        key = (get_language(), context.autoescape)
        value = self.kept.get(key)
        if value is None:
            shown = super().render(context)
            value = self.kept[key] = context[self.asvar] if self.asvar else shown
        if self.asvar:
            context[self.asvar] = value
            return ""
        return value


@register.tag("translate")
@register.tag("trans")
def do_translate(parser, token):
    node = i18n.do_translate(parser, token)
    return TranslateOnceNode(node.filter_expression, node.noop, node.asvar, node.message_context)


@receiver(setting_changed)
def _forget(**kwargs):
    for node in _nodes:  # a test's other catalogue or languages
        node.kept.clear()
