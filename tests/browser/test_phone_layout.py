"""On a phone every table is a list: flags and actions are on screen without scrolling
sideways; at 320 px long words (an email address) wrap instead of widening the page."""

import datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from records import services
from records.models import Prescription
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
LONG_EMAIL = "camille.durand-de-la-fontaine-saint-exupery@centre-hospitalier-universitaire.example.fr"


def overflowing(page) -> list[str]:
    """The page itself, or any box on it, wider than its room (it would scroll sideways);
    visually hidden text (1 px, clipped) is meant to be so."""
    return page.evaluate(
        """() => [document.documentElement, ...document.querySelectorAll('.table-wrap, main *')]
            .filter(e => e.clientWidth > 1 && e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible'
                         || e === document.documentElement && e.scrollWidth > innerWidth)
            .map(e => e.tagName + '.' + e.className)"""
    )


def inside_the_screen(locator, width):
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


def test_flags_and_renewal_are_on_a_phone_screen(page, patient, clinician, team):
    today = datetime.date.today()
    Prescription.objects.create(
        patient=patient, medication="Ramipril 5 mg", dosage="1 comprimé", frequency="le matin",
        start_date=today - datetime.timedelta(days=30), renewable=True, prescriber=clinician, team=team,
    )  # fmt: skip
    services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan sanguin", collected_on=today,
        observations=[{"loinc": "2345-7", "name": "Glucose à jeun", "value": Decimal("1.32"), "unit": "g/L",
                       "low": Decimal("0.70"), "high": Decimal("1.10")}],
    )  # fmt: skip
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, patient.user)

    page.goto("/my/prescriptions/")
    renew = page.get_by_role("button", name="Demander un renouvellement")
    expect(renew).to_be_visible()
    assert inside_the_screen(renew, 390)
    labels = page.eval_on_selector_all(
        "main td", "cells => cells.map(c => getComputedStyle(c, '::before').content)"
    )  # each cell says its column
    assert '"Renouvelable"' in labels and '"Posologie"' in labels
    assert overflowing(page) == []

    page.goto("/my/results/")
    flag = page.get_by_text("Élevé", exact=True)
    expect(flag).to_be_visible()
    assert inside_the_screen(flag, 390)
    assert overflowing(page) == []


def test_a_long_email_wraps_at_320_px(browser, live_server, page, patient, support):
    patient.user.email = LONG_EMAIL
    patient.user.save(update_fields=["email"])
    page.set_viewport_size({"width": 320, "height": 640})
    sign_in(page, patient.user)
    page.goto("/accounts/security/")
    expect(page.get_by_text(LONG_EMAIL, exact=False).first).to_be_visible()
    assert overflowing(page) == []

    agent = browser.new_context(base_url=live_server.url, locale="fr-FR", viewport={"width": 320, "height": 640})
    agent_page = agent.new_page()
    sign_in(agent_page, support)
    agent_page.goto(f"/support/accounts/{patient.user.pk}/")
    expect(agent_page.get_by_text(LONG_EMAIL, exact=False).first).to_be_visible()
    assert overflowing(agent_page) == []
    agent.close()


LONG_URL = "https://www.ameli.fr/assure/remboursements/rembourse/medicaments-vaccins-dispositifs-medicaux?" + "x" * 120


def test_a_long_address_or_a_subject_without_spaces_wraps_in_a_thread_and_the_inboxes(
    browser, live_server, page, patient, clinician, team
):
    from messaging import services as messaging

    conversation = messaging.start_conversation(
        author=patient.user,
        patient=patient,
        team=team,
        subject="Remboursement" * 12,
        kind="question",
        body=f"Voir {LONG_URL} merci",
    )
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, patient.user)
    for path in (f"/messages/{conversation.pk}/", "/messages/", "/my/"):
        page.goto(path)
        assert overflowing(page) == [], path
    agent = browser.new_context(base_url=live_server.url, locale="fr-FR", viewport={"width": 390, "height": 844})
    agent_page = agent.new_page()
    sign_in(agent_page, clinician)
    for path in (f"/messages/{conversation.pk}/", "/messages/team/"):
        agent_page.goto(path)
        assert overflowing(agent_page) == [], path
    agent.close()


def words_broken(page) -> list[str]:
    """The words of the page's table cells that run over two lines (a column narrowed
    below its words: « Posolo/gie »)."""
    return page.evaluate(
        """() => {
            const broken = [];
            for (const cell of document.querySelectorAll('main td, main th')) {
                const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    for (const match of node.textContent.matchAll(/\\S+/g)) {
                        const range = document.createRange();
                        range.setStart(node, match.index);
                        range.setEnd(node, match.index + match[0].length);
                        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
                        if (lines.size > 1) broken.push(match[0]);
                    }
                }
            }
            return broken;
        }"""
    )


def test_on_a_computer_table_columns_keep_their_words_whole(page, patient, clinician, team):
    today = datetime.date.today()
    Prescription.objects.create(
        patient=patient, medication="Amoxicilline/acide clavulanique 1 g/125 mg", dosage="1 comprimé",
        frequency="matin, midi et soir pendant sept jours", start_date=today + datetime.timedelta(days=5),
        end_date=today + datetime.timedelta(days=12), renewable=True, prescriber=clinician, team=team,
    )  # fmt: skip
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, patient.user)
    page.goto("/my/prescriptions/")
    expect(page.get_by_text("Posologie").first).to_be_visible()
    assert words_broken(page) == []
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: each cell a line, long words may wrap
    assert overflowing(page) == []


def test_registering_an_api_client_fits_a_320_px_screen(page, clinician, team):
    """The scopes' checkboxes name them (system/DocumentReference.write): they wrap."""
    from portal.careteams.models import Membership

    Membership.objects.filter(team=team, user=clinician).update(is_manager=True)
    page.set_viewport_size({"width": 320, "height": 700})
    sign_in(page, clinician)
    page.goto(f"/care/teams/{team.pk}/api-clients/new/")
    expect(page.get_by_role("group", name="Ce qu’il peut faire")).to_be_visible()
    assert overflowing(page) == []
