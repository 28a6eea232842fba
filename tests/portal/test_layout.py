"""The base layout: languages, landmarks, headers, nothing fetched from elsewhere."""

import re
from pathlib import Path

import polib
import pytest
from django.contrib.staticfiles.storage import StaticFilesStorage
from django.urls import reverse
from django.utils.safestring import mark_safe

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_french_by_default(client):
    page = client.get(reverse("account_login")).content.decode()
    assert '<html lang="fr">' in page
    assert "Se connecter" in page


def test_english_on_request(client):
    page = client.get(reverse("account_login"), headers={"accept-language": "en"}).content.decode()
    assert '<html lang="en">' in page
    assert "Sign in to Carnet" in page


def test_language_switcher_sets_the_language(client):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/accounts/login/"})
    assert response.status_code == 302
    assert '<html lang="en">' in client.get(reverse("account_login")).content.decode()


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_language_menu_offers_each_language_in_itself_the_current_one_selected(client, language):
    page = client.get(reverse("account_login"), headers={"accept-language": language}).content.decode()
    menu = page.split('<select id="language-select" name="language">')[1].split("</select>")[0]
    selected = {"fr": " selected>Français", "en": " selected>English"}[language]
    assert re.findall(r'<option value="(\w+)" lang="\1"(?: selected)?>(\w+)</option>', menu) == [
        ("fr", "Français"),
        ("en", "English"),
    ]
    assert menu.count(" selected") == 1 and selected in menu


def test_landmarks_and_skip_link(client, login, patient):
    login(patient)
    page = client.get(reverse("patient_home")).content.decode()
    assert 'href="#main"' in page and 'id="main"' in page
    assert "<header" in page and "<nav" in page and "<main" in page and "<footer" in page


def test_no_external_resource_on_any_page(client, login, patient):
    login(patient)
    for url in [reverse("account_login"), reverse("patient_home")]:
        page = client.get(url).content.decode()
        assert not re.search(r"""(src|href)=["'](https?:)?//""", page), url


def test_security_headers(client, login, patient):
    login(patient)
    response = client.get(reverse("patient_home"))
    csp = response["Content-Security-Policy"]
    for directive in ["default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"]:
        assert directive in csp
    assert "unsafe-inline" not in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'nonce="{nonce}"' in response.content.decode()
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]


def test_french_catalogue_is_complete():
    catalogue = polib.pofile(str(ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po"))
    assert len(catalogue) > 50
    assert [entry.msgid for entry in catalogue.untranslated_entries()] == []
    assert [entry.msgid for entry in catalogue.fuzzy_entries()] == []


def test_the_layouts_links_are_what_reverse_gives():
    """The layout's links are ``{% url %}``s, each reversed once per URLconf and script
    prefix: under another prefix (Carnet served below a path), the links follow it."""
    from django.template import engines
    from django.urls import set_script_prefix

    def link(name):
        return engines["django"].from_string("{% url name %}").render({"name": name})

    for name in ("home", "help", "messaging:inbox", "account_logout", "set_language"):
        assert link(name) == reverse(name)
    set_script_prefix("/carnet/")
    try:
        assert link("help") == reverse("help") == "/carnet/help/"
    finally:
        set_script_prefix("/")
    assert not link("help").startswith("/carnet/")


class HashedNames(StaticFilesStorage):
    """Names that carry a hash, as the manifest's do in production."""

    def url(self, name):
        stem, _, extension = name.rpartition(".")
        return super().url(f"{stem}.0123abcd.{extension}")


def test_the_layouts_cached_files_are_what_static_gives(settings):
    """``{% asset %}`` works each file's URL out once per static URL and storage: with
    another (a test's, or the hashed names of the manifest), the page follows it."""
    from django.templatetags.static import static

    from portal.templatetags.layout import asset

    paths = ("css/carnet.css", "img/carnet.svg", "js/carnet.js")
    assert [asset(path) for path in paths] == [static(path) for path in paths]
    settings.STATIC_URL = "/assets/v2/"
    assert asset("css/carnet.css") == static("css/carnet.css") == "/assets/v2/css/carnet.css"
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "tests.portal.test_layout.HashedNames"}}
    assert asset("css/carnet.css") == static("css/carnet.css") == "/assets/v2/css/carnet.0123abcd.css"


def _current_links(html):
    """The (label, aria-current) of the main navigation's links that say they are current."""
    nav = re.search(r'<nav aria-label="[^"]*" class="main-nav">(.*?)</nav>', html, re.S).group(1)
    return re.findall(r'<a href="([^"]*)" aria-current="(page|true)"', nav)


@pytest.mark.parametrize(
    ("who", "path", "current"),
    [
        ("patient", "/my/", ("/my/", "page")),
        ("patient", "/my/appointments/", ("/my/appointments/", "page")),
        ("patient", "/my/documents/", ("/my/", "true")),
        ("patient", "/messages/", ("/messages/", "page")),
        ("clinician", "/care/", ("/care/", "page")),
        ("clinician", "/care/agenda/", ("/care/agenda/", "page")),
        ("clinician", "/care/agenda/week/", ("/care/agenda/", "true")),
        ("clinician", "/messages/team/", ("/messages/team/", "page")),
        ("clinician", "conversation", ("/messages/team/", "true")),
        ("clinician", "team settings", ("/care/agenda/", "true")),  # reached from the team's agenda
        ("clinician", "/accounts/security/", ("/accounts/security/", "page")),
    ],
)
def test_one_link_of_the_navigation_at_most_is_current(request, client, login, who, path, current, patient, team):
    user = request.getfixturevalue(who)
    if path == "conversation":
        from messaging.models import Conversation

        conversation = Conversation.objects.create(patient=patient, team=team, subject="Q", started_by=patient.user)
        path = f"/messages/{conversation.pk}/"
    if path == "team settings":  # every member reads them
        path = f"/care/teams/{team.pk}/settings/"
    login(user)
    response = client.get(path)
    assert response.status_code == 200, path
    assert _current_links(response.content.decode()) == [current]


def _rendered_once(source):
    from django.template import engines

    return engines["django"].from_string("{% load layout %}" + source)


def test_a_block_rendered_once_sees_only_its_own_values(rf, patient):
    """What is kept for every request holds nothing of the one that rendered it: the page's
    and the request's variables are empty in it, only its named values are there."""
    request = rf.get("/my/")
    request.user = patient.user
    template = _rendered_once(
        "{% rendered_once role=user.role %}[{{ role }}|{{ user.email }}|{{ request.path }}|{{ secret }}]"
        "{% endrendered_once %}"
    )
    assert template.render({"secret": "Diabète"}, request) == "[patient|||]"


@pytest.mark.parametrize("value", [["a"], mark_safe("a"), 1.5, object()])
def test_a_block_rendered_once_takes_plain_values_only(value):
    """A value whose equality does not mean the same text (a list, a safe string equal to
    an unsafe one, a float, an object) is refused, not kept under a key that could match
    another page's."""
    from django.template import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError, match="only str, int, bool and None"):
        _rendered_once("{% rendered_once value=value %}{{ value }}{% endrendered_once %}").render({"value": value})


def test_a_block_rendered_once_holds_no_block_of_the_page():
    """A page's ``{% block %}`` in it could never be filled in by the page: refused when
    the template is read."""
    from django.template import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError, match="block"):
        _rendered_once("{% rendered_once %}{% block nav %}{% endblock %}{% endrendered_once %}")


def test_a_block_rendered_once_is_kept_per_language_and_values():
    """The same language and values give the text first rendered (``now "u"``, the clock's
    microseconds, does not move); another language or value renders it again, which is
    then kept too; past ``MAX_KEPT`` versions, they are all still right."""
    from django.utils import translation

    from portal.templatetags.layout import RenderedOnceNode

    template = _rendered_once(
        '{% load translations %}{% rendered_once n=n %}{{ n }} {% translate "Sign out" %} {% now "u" %}{% endrendered_once %}'
    )
    with translation.override("fr"):
        first = template.render({"n": 1})
        assert first.startswith("1 Se déconnecter ")
        assert [template.render({"n": 1}) for _ in range(3)] == [first] * 3
        other = template.render({"n": 2})
        assert other.startswith("2 Se déconnecter ")
        assert template.render({"n": 2}) == other
    with translation.override("en"):
        english = template.render({"n": 1})
        assert english.startswith("1 Sign out ")
        assert template.render({"n": 1}) == english
    with translation.override("fr"):
        assert template.render({"n": 1}) == first
        for n in range(RenderedOnceNode.MAX_KEPT + 5):
            assert template.render({"n": n}).startswith(f"{n} Se déconnecter ")
    (node,) = [node for node in template.template.nodelist if isinstance(node, RenderedOnceNode)]
    assert 0 < len(node.kept) <= RenderedOnceNode.MAX_KEPT


def test_the_menu_is_each_users_own_whoever_came_before(client, login, patient, other_patient, team, other_team):
    """The header's menu is kept per role, section, record and unread count: requests of
    two patients, one with unread messages, in two languages and sections, one after the
    other, each get their own (the badge, the current link, the language)."""
    from django.conf import settings

    from messaging import services
    from tests.factories import ClinicianFactory

    nurse = ClinicianFactory(teams=[team])
    conversation = services.start_conversation(
        author=patient.user, patient=patient, team=team, subject="Question", kind="question", body="Bonjour"
    )
    services.send_message(author=nurse, conversation=conversation, body="Réponse 1")
    services.send_message(author=nurse, conversation=conversation, body="Réponse 2")

    def menu(user, path, language):
        login(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        html = client.get(path).content.decode()
        return re.search(r'<details class="site-menu">(.*?)</details>', html, re.S).group(1)

    for _ in range(2):
        for language, unread, home in (
            ("fr", "messages non lus", "Mon espace santé"),
            ("en", "unread messages", "My health space"),
        ):
            mine = menu(patient.user, "/my/", language)
            # On the menu button and on the messages link.
            assert mine.count(f'<span class="badge">2<span class="visually-hidden"> {unread}</span></span>') == 2, mine
            assert f'aria-current="page">{home}<' in mine
            theirs = menu(other_patient.user, "/messages/", language)
            assert "badge" not in theirs and "non lu" not in theirs and "unread" not in theirs, theirs
            assert re.search(r'href="/messages/" aria-current="page"', theirs)
            assert f'aria-current="page">{home}<' not in theirs
