"""Playwright driving Debian's Chromium (never a downloaded browser)."""

import os
import re

import pytest
from django.conf import settings
from django.core import mail
from playwright.sync_api import expect

from tests.conftest import CHROMIUM, need, second_factor_of, terms_accepted_by
from tests.factories import PASSWORD

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    need(CHROMIUM is not None, "needs Chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # tests make around it are still plain synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15_000)
    outside = []
    # Nothing may be fetched from anywhere but our own server.
    page.on("request", lambda r: None if r.url.startswith(live_server.url) else outside.append(r.url))
    yield page
    context.close()
    assert outside == [], f"requests left the site: {outside}"


def sign_in(page, user, password=PASSWORD):
    """Sign in through the real pages, passing the second factor with the code
    emailed to ``user`` (the live server runs in this process: mail.outbox works).
    The terms of use are taken as accepted: their page has a test of its own."""
    second_factor_of(user)
    terms_accepted_by(user)
    page.goto("/accounts/login/")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.get_by_role("button", name="M’envoyer un code par e-mail").click()
    expect(page.get_by_text("Un code a été envoyé")).to_be_visible()
    codes = [m for m in mail.outbox if m.subject == settings.OTP_EMAIL_SUBJECT and m.to == [user.email]]
    code = page.get_by_label("Code reçu par e-mail")
    code.fill(re.search(r"\b(\d{6})\b", codes[-1].body).group(1))
    code.press("Enter")  # submits the email form: with an app too, the page has one form per kind
    open_menu(page)
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    close_menu(page)


def open_menu(page):
    """On a phone the navigation, the record switcher and signing out are behind the
    header's menu button; on a wider screen they are on show (the button is hidden)."""
    button = page.locator("summary.site-menu-button")
    button.wait_for(state="attached")
    if button.is_visible() and page.locator("details.site-menu:not([open])").count():
        button.click()


def close_menu(page):
    if page.locator("details.site-menu[open]").count() and page.locator("summary.site-menu-button").is_visible():
        page.locator("summary.site-menu-button").click()


def sign_out(page):
    open_menu(page)
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_role("heading", name="Se connecter à Carnet")).to_be_visible()
