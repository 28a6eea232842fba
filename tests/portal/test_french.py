"""French typography: « le dossier d’Anaïs », not « de Anaïs »."""

import pytest
from django.template import engines
from django.urls import reverse
from django.utils import translation

from portal.templatetags.french import elide


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Vous êtes dans le dossier de Anaïs Vasseur.", "Vous êtes dans le dossier d’Anaïs Vasseur."),
        ("Dossier de Éloïse Martin", "Dossier d’Éloïse Martin"),
        ("Représentants de Yann Le Gall", "Représentants de Yann Le Gall"),
        ("Dossier de Camille Durand", "Dossier de Camille Durand"),
        ("Dossier de Hugo Petit", "Dossier de Hugo Petit"),
    ],
)
def test_de_before_a_vowel_is_elided_in_french_only(text, expected):
    with translation.override("fr"):
        assert elide(text) == expected
    with translation.override("en"):
        assert elide(text) == text


def test_the_pages_sentences_go_through_it():
    template = engines["django"].from_string(
        "{% load translations french %}{% filter elide %}{% blocktranslate with name=name %}Record of {{ name }}"
        "{% endblocktranslate %}{% endfilter %}"
    )
    with translation.override("fr"):
        assert template.render({"name": "Anaïs <b>V</b>"}) == "Dossier d’Anaïs &lt;b&gt;V&lt;/b&gt;"


def test_every_french_text_uses_the_typographic_apostrophe():
    """« l’archive », not « l'archive »: one typography in Carnet's pages, emails and archive
    (its own translations; those of the libraries it uses are theirs)."""
    import gettext
    import re

    from django.conf import settings

    with open(settings.BASE_DIR / "locale" / "fr" / "LC_MESSAGES" / "django.mo", "rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)._catalog
    texts = [value for value in catalog.values() if isinstance(value, str)]
    straight = sorted(text for text in texts if re.search(r"[^\W\d_]'[^\W\d_]", text))
    assert len(texts) > 1000 and straight == []


@pytest.mark.django_db
def test_a_select_of_a_models_choices_opens_with_carnets_own_wording(client, login, patient):
    """« Choisissez… », as Carnet's own selects say, not Django's « - Choisir une option - »."""
    login(patient)
    page = client.get(reverse("records:profile")).content.decode()
    assert '<option value="" selected>Choisissez…</option>' in page and "Choisir une option" not in page
