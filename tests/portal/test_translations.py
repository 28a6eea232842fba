"""``{% load translations %}`` is Django's i18n library with a literal's ``{% translate %}``
kept per language (portal.templatetags.translations): what it writes is what Django's
writes, and every template of the project loads it."""

import re
from pathlib import Path

import pytest
from django.template import Context, Engine, engines
from django.utils import translation

from portal.templatetags.translations import TranslateOnceNode

SOURCES = [
    '{% translate "Sign out" %}',
    '{% trans "Sign out" %}',
    '{% translate "Menu" context "the header\'s menu button" %}',
    '{% translate "Sign out" as label %}[{{ label }}]',
    '{% translate "Sign out" noop %}',
    '{% translate "Sign out"|upper %}',
    "{% translate text %}",
    "{% translate text context kind %}",
    '{% translate "50%% <b>sûr</b> & d\'accord" %}',
    "{% blocktranslate count counter=n %}unread message{% plural %}unread messages{% endblocktranslate %}",
    "{% get_current_language as code %}{{ code }}",
]
CONTEXT = {"text": "Sign out", "kind": "the header's menu button", "n": 2}


def _djangos(source, autoescape):
    """The same template under Django's own i18n library."""
    engine = Engine(dirs=[], libraries={"i18n": "django.templatetags.i18n"}, autoescape=autoescape, app_dirs=False)
    return engine.from_string("{% load i18n %}" + source)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("autoescape", [True, False])
def test_each_tag_writes_what_djangos_writes(source, language, autoescape):
    """Three renders each (the first keeps, the next two read what was kept), in either
    order of the languages, the same text as Django's tag."""
    ours = engines["django"].engine.from_string("{% load translations %}" + source)
    djangos = _djangos(source, autoescape)
    for code in (language, "en" if language == "fr" else "fr", language):
        with translation.override(code):
            expected = djangos.render(Context(CONTEXT, autoescape=autoescape))
            assert [ours.render(Context(CONTEXT, autoescape=autoescape)) for _ in range(3)] == [expected] * 3


def test_only_a_literal_with_a_constant_context_is_kept():
    """A variable, a filter or a context given by a variable are translated at each render."""
    template = engines["django"].engine.from_string(
        '{% load translations %}{% translate "a" %}{% translate "b" context "c" %}{% translate "d"|upper %}'
        '{% translate text %}{% translate "e" context kind %}'
    )
    nodes = [node for node in template.nodelist if isinstance(node, TranslateOnceNode)]
    assert [node.kept is not None for node in nodes] == [True, True, False, False, False]


@pytest.mark.django_db
def test_the_pages_say_what_the_catalogue_says(client):
    """Through a page: the sign-in page in French then English then French."""
    for language, title in (
        ("fr", "Se connecter à Carnet"),
        ("en", "Sign in to Carnet"),
        ("fr", "Se connecter à Carnet"),
    ):
        page = client.get("/accounts/login/", headers={"accept-language": language}).content.decode()
        assert title in page


def test_every_template_loads_the_translations_kept_per_language():
    """A template that loads Django's ``i18n`` would still be right, only slower: none does."""
    root = Path(__file__).resolve().parents[2] / "templates"
    loads = {
        path.relative_to(root).as_posix(): re.findall(r"{% load ([^%]*)%}", path.read_text())
        for path in root.rglob("*")
        if path.is_file()
    }
    assert [name for name, found in loads.items() if any("i18n" in load.split() for load in found)] == []
    assert sum("translations" in load.split() for found in loads.values() for load in found) > 100
