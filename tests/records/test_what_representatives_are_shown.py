"""What a representative is shown leads somewhere: every link of the patient-side pages
a trusted helper (no say over the record's care teams, appointments or history) or a
parent reaches from the dashboard answers, none a 404 (a product walk found the menu's
appointments, the corrections' history and a document's "hide" leading to one); and
the record's holder may remove what a helper added to it."""

import re
from html import unescape

import pytest
from django.urls import reverse

from portal.accounts.models import Representation
from records import services
from records.models import Document, Prescription
from tests.conftest import switch
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

SKIPPED = ("/accounts/logout", "/i18n/", "/static/", "/media/")


def crawl(client, start, limit=60):
    """GET every same-site link reachable from ``start`` (``limit`` pages at most): the
    pages that answered, and the links that answered 404 or 500 with the page they were on."""
    seen, queue, broken = {start}, [(start, None)], []
    while queue and len(seen) <= limit:
        url, source = queue.pop(0)
        response = client.get(url)
        if response.status_code in (404, 500):
            broken.append((url, source, response.status_code))
            continue
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        for href in re.findall(r'href="(/[^"#]*)', response.content.decode()):
            href = unescape(href)
            if href not in seen and not href.startswith(SKIPPED):
                seen.add(href)
                queue.append((href, url))
    return seen, broken


@pytest.fixture
def helper(patient):
    """Lucas, Camille's trusted helper for all four parts."""
    lucas = PatientFactory(first_name="Lucas", last_name="Bernard")
    Representation.objects.create(patient=patient, representative=lucas.user, kind="helper")
    return lucas


@pytest.fixture
def record_items(patient, clinician, team, patient_document, clinician_document):
    Prescription.objects.create(
        patient=patient, prescriber=clinician, team=team, medication="Amoxicilline", dosage="1 g", frequency="2/j",
        start_date=patient_document.care_date,
    )  # fmt: skip


@pytest.mark.parametrize("who", ["helper", "parent"])
def test_every_link_a_representative_is_shown_answers(request, client, login, record_items, who, patient, minor):
    representative = request.getfixturevalue(who)
    record = patient if who == "helper" else minor
    login(representative)
    switch(client, record)
    seen, broken = crawl(client, reverse("patient_home"))
    assert broken == [], broken
    assert len(seen) > 10


def test_a_helper_is_not_offered_what_only_the_holder_may_do(client, login, helper, patient, patient_document):
    login(helper)
    switch(client, patient)
    page = client.get(reverse("records:document", args=[patient_document.pk])).content.decode()
    assert reverse("records:set_hidden", args=[patient_document.pk]) not in page
    assert reverse("records:delete", args=[patient_document.pk]) not in page  # the holder's upload


def test_the_holder_may_remove_what_their_helper_added(client, login, helper, patient, upload):
    document = services.upload_document(
        author=helper.user, patient=patient, upload=upload(), title="Scan de l'ordonnance", category="other",
        care_date=patient.birth_date.replace(year=2026),
    )  # fmt: skip
    login(patient)
    delete = reverse("records:delete", args=[document.pk])
    assert delete in client.get(reverse("records:document", args=[document.pk])).content.decode()
    client.post(delete)
    assert not Document.objects.filter(pk=document.pk).exists()


def test_a_confidential_corrected_version_is_not_announced_to_the_representative(
    client, login, helper, patient, clinician, team, clinician_document, pdf_bytes
):
    services.replace_document(
        actor=clinician, team=team, document=clinician_document, data=pdf_bytes, content_type="application/pdf",
        title="Compte rendu corrigé", category="report", care_date=clinician_document.care_date, reason="Erreur",
        confidential=True,
    )  # fmt: skip
    page = reverse("records:document", args=[clinician_document.pk])
    login(patient)
    assert "Une version corrigée remplace ce document." in client.get(page).content.decode()
    login(helper)
    switch(client, patient)
    assert "Une version corrigée remplace ce document." not in client.get(page).content.decode()


def test_ones_own_actions_in_the_access_history_are_not_to_report(client, login, patient):
    from portal.audit.models import AccessLog

    own = AccessLog.objects.create(patient=patient, actor=patient.user, actor_role="patient", action="export")
    login(patient)
    page = client.get(reverse("records:access_history")).content.decode()
    assert reverse("records:report_access", args=[own.pk]) not in page
    client.post(reverse("records:report_access", args=[own.pk]), {"comment": "?"})
    assert not AccessLog.objects.filter(report__isnull=False).exists()  # no case opened


def test_pages_about_someone_elses_record_say_whose_it_is(client, login, helper, parent, minor, patient):
    login(helper)
    switch(client, patient)
    home = client.get(reverse("patient_home")).content.decode()
    assert "Tous les documents" in home and "Tous mes documents" not in home
    login(parent)
    switch(client, minor)
    for name in ("agenda:mine", "records:documents"):
        page = client.get(reverse(name)).content.decode()
        assert re.search(r"<h1>[^<]*<span class=\"record-name\">— Léa Durand</span></h1>", page), name
    login(patient)
    assert "Tous mes documents" in client.get(reverse("patient_home")).content.decode()


def test_an_item_of_another_record_one_acts_for_offers_to_go_there(client, login, parent, minor, upload):
    """Camille, in Léa's record, opens a bookmark to her own document: a 404 (one record a
    page) that says where it is and takes her there; an item of nobody she acts for is
    the plain 404."""
    own = services.upload_document(
        author=parent.user, patient=parent, upload=upload(), title="Mon ordonnance", category="other",
        care_date=parent.birth_date.replace(year=2026),
    )  # fmt: skip
    login(parent)
    switch(client, minor)
    page = reverse("records:document", args=[own.pk])
    response = client.get(page)
    assert response.status_code == 404
    html = response.content.decode()
    assert "Cette page est dans votre propre dossier" in html and f'name="next" value="{page}"' in html
    moved = client.post(reverse("representation:switch"), {"record": parent.pk, "next": page})
    assert moved["Location"] == page and client.get(page).status_code == 200
    # Elsewhere than this site: home, not there.
    outside = client.post(reverse("representation:switch"), {"record": minor.pk, "next": "//evil.example/"})
    assert outside["Location"] == reverse("patient_home")
    assert "Cette page est dans" not in client.get(reverse("records:document", args=[999999])).content.decode()
