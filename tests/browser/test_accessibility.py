"""axe-core over every page a role reaches from its navigation, in French at desktop and
phone widths and in English at the phone's: no WCAG 2.x A/AA violation anywhere.

The crawl follows same-site links breadth-first from the role's home, so a new page is
audited without anyone adding it here. One page per route is audited (ids and query
values are folded), which keeps the run short while covering every template.
"""

import re
from collections import deque
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from portal.accounts.models import User
from portal.management.commands.seed_demo import demo_email
from tests.conftest import second_factor_of, terms_accepted_by

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = (Path(__file__).parent / "assets" / "axe.min.js").read_text()
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
# English at the phone's width only: the markup and the styles are French's, only the texts
# differ (what axe reads of them: the page's language, the names of its controls), and the
# narrow layout is where a longer text would show. The audits are most of the suite's time.
WIDTHS_OF = {"fr": WIDTHS, "en": {"phone": WIDTHS["phone"]}}
ROLES = {"patient": "camille.durand", "clinician": "claire.martin", "support": "julie.moreau"}
MAX_PAGES = 60  # per role and language; the demo has fewer routes (the test fails when it has not)
# Not pages: files, and what signs out or leaves the product.
SKIP = re.compile(r"/(download|file|preview|raw|logout)/|/admin/|/i18n/|\.(pdf|zip|json|xml|png|jpe?g)$")
ID = re.compile(r"/(\d+|[0-9a-f-]{32,36}|[A-Za-z0-9_-]{20,})(?=/)")


def route_of(path: str, query: str) -> str:
    """The route a URL belongs to: /my/documents/12/ and /my/documents/13/ are one."""
    keys = sorted(part.split("=")[0] for part in query.split("&") if part)
    return ID.sub("/<id>", path) + ("?" + "&".join(keys) if keys else "")


def session_cookie(user) -> dict:
    """A session past both factors, as after a real sign-in (the sign-in pages are
    audited by the other browser tests' paths; here we audit what comes after)."""
    terms_accepted_by(user)  # their page has a test of its own
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = second_factor_of(user).persistent_id
    session.save()
    return {"name": settings.SESSION_COOKIE_NAME, "value": session.session_key}


def audit(page) -> list[str]:
    """The WCAG A/AA violations axe finds on the page as it is, one line each."""
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_TAGS,
    )
    return [
        f"{violation['id']} ({violation['impact']}): {node['target']} {node['failureSummary'].splitlines()[-1].strip()}"
        for violation in result["violations"]
        for node in violation["nodes"]
    ]


def crawl(page, base: str, start: str, language: str):
    """Visit every same-site page reachable from ``start``, breadth-first; yield each
    (url, width, violations), the page audited at each width (the viewport is resized:
    the server renders the same page for both, the media queries do the rest)."""
    seen_routes, queue = set(), deque([start])
    while queue and len(seen_routes) < MAX_PAGES:
        url = queue.popleft()
        parts = urlsplit(url)
        route = route_of(parts.path, parts.query)
        if route in seen_routes:
            continue
        seen_routes.add(route)
        response = page.goto(url)
        assert response is not None and response.ok, f"{url}: {response and response.status}"
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        assert page.locator("html").get_attribute("lang") == language, url
        for width, (w, h) in WIDTHS_OF[language].items():
            page.set_viewport_size({"width": w, "height": h})
            yield page.url, width, audit(page)
        hrefs = page.eval_on_selector_all("a[href]:not([download])", "links => links.map(a => a.href)")
        for href in hrefs:
            target = urlsplit(urljoin(page.url, href))
            if target.netloc != urlsplit(base).netloc or SKIP.search(target.path):
                continue
            link = f"{base}{target.path}" + (f"?{target.query}" if target.query else "")
            if route_of(target.path, target.query) not in seen_routes:
                queue.append(link)


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


@pytest.mark.parametrize("role", ROLES)
def test_no_wcag_violation_on_any_page(browser, live_server, demo, role):
    """Seeding the demo is the slow part (about half a minute): once per role, then
    both languages, each page at its language's widths."""
    user = User.objects.get(email=demo_email(ROLES[role]))
    violations, audited = [], []
    for language in ("fr", "en"):
        context = browser.new_context(base_url=live_server.url, locale=f"{language}-FR")
        context.add_cookies(
            [
                # domain and secure: how Chromium takes a "__Host-" cookie on localhost
                {**session_cookie(user), "domain": "localhost", "path": "/", "secure": True},
                {"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url},
            ]
        )
        context.add_init_script(script=AXE)  # as the browser's own script: the page's CSP stays as it is
        page = context.new_page()
        page.set_default_timeout(15_000)
        for url, width, found in crawl(page, live_server.url, live_server.url + reverse("home"), language):
            audited.append((url, width))
            violations += [f"[{language} {width}] {url.removeprefix(live_server.url)} {line}" for line in found]
        context.close()
    print(f"{role}: {len(audited)} pages audited")
    assert len(audited) >= 4 * 4, audited  # the crawl did reach the role's pages
    assert len(audited) < sum(map(len, WIDTHS_OF.values())) * MAX_PAGES, (
        "the crawl stopped at MAX_PAGES: pages left out"
    )
    assert violations == [], "\n".join(violations)


# The main forms, sent empty: their error states are pages too. (role, URL name, its arguments from the demo)
FORMS = [
    (None, "contact", ()),
    ("patient", "records:upload", ()),
    ("patient", "records:profile", ()),
    ("patient", "messaging:new", ()),
    ("clinician", "careteams:register_patient", ()),
    ("clinician", "records:clinician_upload", ("camille",)),
    ("clinician", "records:add_prescription", ("camille",)),
    ("clinician", "records:add_lab_report", ("camille",)),
    ("support", "support:create_account", ("clinician",)),
    ("support", "support:act", ("camille-account", "deactivate")),
]
SUBMIT_EMPTY = """() => {
    const fields = f => f.querySelectorAll('input:not([type=hidden]):not([type=checkbox]), select, textarea').length;
    const form = [...document.querySelectorAll('main form[method=post]')].sort((a, b) => fields(b) - fields(a))[0];
    for (const field of form.querySelectorAll('input:not([type=hidden]):not([type=checkbox]):not([type=radio]), textarea')) field.value = '';
    for (const select of form.querySelectorAll('select')) select.selectedIndex = 0;
    form.noValidate = true;
    form.requestSubmit();
}"""


def test_no_wcag_violation_on_the_error_state_of_the_main_forms(browser, live_server, demo):
    """Each form sent empty comes back with its error summary, « Erreur – » in the
    title, and no axe violation, in both languages at their widths (``WIDTHS_OF``)."""
    from portal.accounts.models import Patient

    camille = Patient.objects.get(user__email=demo_email(ROLES["patient"]))
    arguments = {"camille": camille.pk, "camille-account": camille.user_id}
    violations, audited = [], 0
    for language in ("fr", "en"):
        for role, name, args in FORMS:
            context = browser.new_context(base_url=live_server.url, locale=f"{language}-FR")
            cookies = [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
            if role:
                user = User.objects.get(email=demo_email(ROLES[role]))
                cookies.append({**session_cookie(user), "domain": "localhost", "path": "/", "secure": True})
            context.add_cookies(cookies)
            context.add_init_script(script=AXE)
            page = context.new_page()
            page.set_default_timeout(15_000)
            url = reverse(name, args=[arguments.get(a, a) for a in args])
            assert page.goto(url).ok, url
            with page.expect_navigation():
                page.evaluate(SUBMIT_EMPTY)
            assert page.locator(".error-summary").count() == 1, f"{url}: no error summary"
            assert page.title().startswith("Erreur" if language == "fr" else "Error"), (url, page.title())
            for width, (w, h) in WIDTHS_OF[language].items():
                page.set_viewport_size({"width": w, "height": h})
                violations += [f"[{language} {width}] {url} (errors) {line}" for line in audit(page)]
                audited += 1
            context.close()
    assert audited == len(FORMS) * sum(map(len, WIDTHS_OF.values()))
    assert violations == [], "\n".join(violations)
