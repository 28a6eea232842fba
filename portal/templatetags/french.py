"""French typography the translations cannot do by themselves."""

import re

from django import template
from django.utils import translation

register = template.Library()

# « de » before a name that starts with a vowel: « d’Anaïs »; « de Hugo » and « de Yann »
# are left as they are (an h may be aspirated, a y is a consonant there).
_DE_VOWEL = re.compile(r"\b([Dd])e ([AEIOUÀÂÄÉÈÊËÎÏÔÖÙÛÜŒaeiouàâäéèêëîïôöùûüœ])")


@register.filter(is_safe=True)
def elide(text):
    """In French, « de Anaïs » becomes « d’Anaïs »: for a sentence that puts a name after
    « de » (« le dossier de %(name)s », « Nouvelle version de %(medication)s »). Other
    languages: unchanged. Safe text stays safe (``is_safe``: an apostrophe added to
    escaped text escapes nothing anew)."""
    if not (translation.get_language() or "").startswith("fr"):
        return text
    return _DE_VOWEL.sub(r"\1’\2", str(text))
