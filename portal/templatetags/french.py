"""French typography the translations cannot do by themselves."""

import re

from django import template
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# « de » before a name that starts with a vowel: « d’Anaïs »; « de Hugo » and « de Yann »
# are left as they are (an h may be aspirated, a y is a consonant there).
_DE_VOWEL = re.compile(r"\b([Dd])e ([AEIOUÀÂÄÉÈÊËÎÏÔÖÙÛÜŒaeiouàâäéèêëîïôöùûüœ])")


@register.filter(is_safe=True)
def elide(text):
    """In French, « de Anaïs » becomes « d’Anaïs »: for a sentence that puts a person's
    name after « de » (« le dossier de %(name)s »). Other languages: unchanged."""
    if not (translation.get_language() or "").startswith("fr"):
        return text
    elided = _DE_VOWEL.sub(r"\1’\2", str(text))
    return mark_safe(elided) if isinstance(text, SafeString) else elided  # noqa: S308 - the same text, an apostrophe in
