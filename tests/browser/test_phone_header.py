"""Issue 20: on a phone (390 × 844) the header was 239 px tall. It now holds the brand,
the name of the record one acts in when it is someone else's, and one « Menu » button (a
<details> disclosure: no script) that opens the navigation, the record switcher and signing
out. The language switch is in the footer. Goal: a header of at most 120 px, in both
languages, for a parent acting for a child, a clinician and a support agent."""

import datetime

import pytest
from playwright.sync_api import expect

from portal.accounts.models import Patient, Representation
from tests.browser.conftest import sign_in
from tests.factories import CareLinkFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}
MAX_HEADER_PX = 120  # was 239 px before issue 20
MENU = {"fr": "Menu", "en": "Menu"}


def header_height(page) -> float:
    return page.locator(".site-header").bounding_box()["height"]


def scrolls_sideways(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth > innerWidth")


def tab_to(page, locator, limit=40):
    """Press Tab until ``locator`` has the focus, as a keyboard user would."""
    handle = locator.element_handle()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("el => el === document.activeElement", handle):
            return
    raise AssertionError(f"{locator} never got the focus with Tab")


def open_menu_with_keyboard(page, language):
    page.locator("body").focus()
    page.evaluate("() => window.scrollTo(0, 0)")
    menu = page.locator("header").get_by_text(MENU[language], exact=True)
    expect(menu).to_be_visible()
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, menu)
    page.keyboard.press("Enter")
    expect(page.locator("details.site-menu")).to_have_attribute("open", "")


def switch_to_english(page):
    page.get_by_role("contentinfo").get_by_label("Langue").select_option("en")
    page.get_by_role("contentinfo").get_by_role("button", name="Changer").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def check_header(page, language, who):
    height = header_height(page)
    print(f"header {who} [{language}]: {height} px")
    assert height <= MAX_HEADER_PX, f"{who} [{language}]: header {height} px"
    assert not scrolls_sideways(page), f"{who} [{language}]"
    # closed, the menu shows nothing of the navigation nor signing out
    expect(page.locator(".main-nav")).to_be_hidden()
    expect(page.locator(".sign-out-form button")).to_be_hidden()


@pytest.fixture
def parent_of_lea(team):
    from tests.factories import PatientFactory

    marie = PatientFactory(first_name="Marie", last_name="Durand", user__first_name="Marie", user__last_name="Durand")
    lea = Patient.objects.create(first_name="Léa", last_name="Durand", birth_date=datetime.date(2016, 4, 2))
    CareLinkFactory(patient=lea, team=team)
    Representation.objects.create(patient=lea, representative=marie.user, kind="parent", proof="family_book")
    return marie.user


def test_a_parent_acting_for_a_child_has_a_compact_header_and_a_keyboard_menu(page, parent_of_lea):
    page.set_viewport_size(PHONE)
    sign_in(page, parent_of_lea)
    check_header(page, "fr", "parent")
    expect(page.locator("header")).not_to_contain_text("Léa Durand")  # in one's own record: no name

    open_menu_with_keyboard(page, "fr")
    switcher = page.get_by_role("navigation", name="Dossiers")
    expect(switcher.get_by_role("button", name="Mon dossier")).to_have_attribute("aria-current", "true")
    tab_to(page, switcher.get_by_role("button", name="Léa"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dossier de Léa Durand")
    expect(page.locator("header .header-record")).to_have_text("Dossier de Léa Durand")  # hidden words + name
    expect(page.locator("header .header-record")).to_be_visible()
    # The whole name is shown (on two lines if need be), not cut after a few letters, down
    # to the narrowest phone (320 px, WCAG's reflow width).
    page.set_viewport_size({"width": 320, "height": 700})
    assert page.locator("header .header-record").evaluate(
        "el => el.scrollHeight <= el.clientHeight + 1 && el.scrollWidth <= el.clientWidth + 1"
    )
    assert header_height(page) <= MAX_HEADER_PX
    expect(page.get_by_role("link", name="Carnet", exact=True)).to_be_visible()  # the logo, named
    page.set_viewport_size(PHONE)
    check_header(page, "fr", "parent for Léa")

    open_menu_with_keyboard(page, "fr")
    nav = page.get_by_role("navigation", name="Principale")
    tab_to(page, nav.get_by_role("link", name="Messages"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Messages")
    open_menu_with_keyboard(page, "fr")
    expect(nav.get_by_role("link", name="Messages")).to_have_attribute("aria-current", "page")
    page.keyboard.press("Escape")  # nothing breaks; the summary still toggles with Enter
    page.locator("summary.site-menu-button").press("Enter")

    switch_to_english(page)
    expect(page.locator("header .header-record")).to_have_text("Record of Léa Durand")
    check_header(page, "en", "parent for Léa")
    open_menu_with_keyboard(page, "en")
    expect(page.get_by_role("navigation", name="Records").get_by_role("button", name="Léa")).to_have_attribute(
        "aria-current", "true"
    )
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert not scrolls_sideways(page)


@pytest.mark.parametrize("who", ["clinician", "support"])
def test_a_professional_has_a_compact_header_and_a_keyboard_menu(page, who, request):
    user = request.getfixturevalue(who)
    page.set_viewport_size(PHONE)
    sign_in(page, user)
    for language in ("fr", "en"):
        if language == "en":
            switch_to_english(page)
        check_header(page, language, who)
        open_menu_with_keyboard(page, language)
        account = {"fr": "Mon compte", "en": "My account"}[language]
        tab_to(page, page.locator(".main-nav").get_by_role("link", name=account))
        page.keyboard.press("Enter")
        page.wait_for_url("**/accounts/security/")
        check_header(page, language, who)


def test_on_a_desktop_the_header_shows_its_links_without_the_menu_button(page, clinician):
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, clinician)
    expect(page.locator("summary.site-menu-button")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Principale").get_by_role("link", name="Mes patients")).to_be_visible()
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    expect(page.get_by_role("contentinfo").get_by_label("Langue")).to_be_visible()


def test_on_a_phone_the_closed_menu_shows_how_many_messages_are_unread(page, patient, clinician, team):
    """The badge of the messages link is inside the closed menu: the button shows it too,
    read with its words by a screen reader."""
    from messaging.services import send_message, start_conversation

    conversation = start_conversation(
        author=patient.user, patient=patient, team=team, subject="Ma question", body="Bonjour", kind="question"
    )
    for body in ("Réponse", "Précision"):
        send_message(author=clinician, conversation=conversation, body=body)
    page.set_viewport_size(PHONE)
    sign_in(page, patient.user)
    button = page.locator("summary.site-menu-button")
    expect(button).to_be_visible()
    expect(button.locator(".badge")).to_have_text("2 messages non lus")
    expect(button.locator(".badge")).to_be_visible()
    assert header_height(page) <= MAX_HEADER_PX and not scrolls_sideways(page)
