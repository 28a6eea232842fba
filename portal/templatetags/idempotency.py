"""``{% form_token %}``: the idempotency token of one rendered form (``portal.idempotency``).
A builtin (settings.TEMPLATES), so no ``{% load %}`` is needed."""

import uuid

from django import template
from django.utils.html import format_html

from portal.idempotency import FIELD

register = template.Library()


@register.simple_tag
def form_token():
    """A hidden field with a new token: each rendering of a form is one intended action."""
    return format_html('<input type="hidden" name="{}" value="{}">', FIELD, uuid.uuid4())
