"""A care team keeps the record right: it withdraws or replaces the documents it
published, corrects lab values, writes profile entries the patient may comment on.
Only the team that published an item corrects it, through an active link; everything
is an event of the record's history, and the patient is told without content."""

import datetime
import itertools
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from portal import access
from portal.careteams.models import CareLink, ClinicianBlock
from records import services
from records.models import (
    Allergy,
    Digest,
    Document,
    Measurement,
    News,
    Observation,
    ObservationRevision,
    Prescription,
    ProfileComment,
    RecordEvent,
)
from records.views import PROFILE_MODELS
from tests.conftest import switch, whole_record
from tests.factories import CareLinkFactory, CareTeamFactory, ClinicianFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def observation(clinician, team, patient):
    report = services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan glycémique", collected_on=datetime.date(2026, 10, 1),
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1.52"), "unit": "g/L",
                       "low": Decimal("0.7"), "high": Decimal("1.1")}],
    )  # fmt: skip
    News.objects.all().delete()
    return report.observations.get()


def fresh_digests():
    """Forget the emails the fixtures' publications sent: the next news goes out at once
    (not 15 minutes after the last email)."""
    Digest.objects.all().delete()
    mail.outbox.clear()


# --- Who may correct: a generated table against a plain statement of the rule ----------

MEMBERSHIPS = ["publishing team", "other caring team", "both teams", "no team"]
LINK_STATES = [CareLink.Status.ACTIVE, CareLink.Status.ENDED, CareLink.Status.BLOCKED]


def may_correct(membership, publisher_link, individually_blocked):
    """The rule: a member of the team that published the item, whose own link with the
    patient is active, and whom the patient has not blocked."""
    in_publisher = membership in ("publishing team", "both teams")
    return in_publisher and publisher_link == CareLink.Status.ACTIVE and not individually_blocked


CASES = list(itertools.product(MEMBERSHIPS, LINK_STATES, [False, True]))


def test_only_the_publishing_team_through_an_active_link_may_correct(
    patient, clinician, team, clinician_document, observation
):
    """Every combination of membership × publishing team's link × individual block, for
    each kind of correctable item (the other team's link stays active throughout)."""
    other = CareTeamFactory(name="Cabinet voisin")
    CareLinkFactory(patient=patient, team=other)
    prescription = Prescription.objects.create(
        patient=patient, medication="Ramipril", dosage="1", frequency="1/j", start_date=datetime.date(2026, 1, 1),
        prescriber=clinician, team=team,
    )  # fmt: skip
    allergy = Allergy.objects.create(patient=patient, author=clinician, team=team, substance="Iode")
    items = [clinician_document, observation, prescription, allergy]
    link = patient.care_links.get(team=team)
    checked = 0
    for membership, state, blocked in CASES:
        teams = {"publishing team": [team], "other caring team": [other], "both teams": [team, other]}
        viewer = ClinicianFactory(teams=teams.get(membership, []))
        link.status = state
        link.save(update_fields=["status"])
        if blocked:
            ClinicianBlock.objects.create(patient=patient, clinician=viewer)
        for item in items:
            found = access.items_correctable_by(viewer, type(item)).filter(pk=item.pk).exists()
            assert found == may_correct(membership, state, blocked), (membership, state, blocked, type(item))
            checked += 1
    assert checked == len(CASES) * len(items) == 96


CORRECTION_ROUTES = ["records:withdraw_document", "records:replace_document", "records:correct_observation",
                     "records:stop_prescription", "records:withdraw_profile_entry"]  # fmt: skip


@pytest.mark.parametrize(("membership", "state"), [
    ("publishing team", CareLink.Status.ACTIVE), ("publishing team", CareLink.Status.ENDED),
    ("publishing team", CareLink.Status.BLOCKED), ("other caring team", CareLink.Status.ACTIVE),
])  # fmt: skip
def test_the_correction_pages_answer_404_to_anyone_but_the_publishing_team(
    client, login, patient, clinician, team, clinician_document, observation, membership, state
):
    other = CareTeamFactory(name="Cabinet voisin")
    CareLinkFactory(patient=patient, team=other)
    patient.care_links.filter(team=team).update(status=state)
    prescription = Prescription.objects.create(
        patient=patient, medication="Ramipril", dosage="1", frequency="1/j", start_date=datetime.date(2026, 1, 1),
        prescriber=clinician, team=team,
    )  # fmt: skip
    allergy = Allergy.objects.create(patient=patient, author=clinician, team=team, substance="Iode")
    viewer = clinician if membership == "publishing team" else ClinicianFactory(teams=[other])
    login(viewer)
    args = {"records:withdraw_document": [clinician_document.pk], "records:replace_document": [clinician_document.pk],
            "records:correct_observation": [observation.pk], "records:stop_prescription": [prescription.pk],
            "records:withdraw_profile_entry": ["allergy", allergy.pk]}  # fmt: skip
    expected = 200 if may_correct(membership, state, False) else 404
    for route in CORRECTION_ROUTES:
        assert client.get(reverse(route, args=args[route])).status_code == expected, route
        # An empty form: shown again with its errors to the team, 404 to anyone else.
        assert client.post(reverse(route, args=args[route]), {}).status_code == expected, route
    assert not RecordEvent.objects.exists()


@pytest.mark.parametrize(("membership", "state"), [
    ("publishing team", CareLink.Status.ACTIVE), ("publishing team", CareLink.Status.ENDED),
    ("other caring team", CareLink.Status.ACTIVE),
])  # fmt: skip
def test_only_the_publishing_team_marks_an_item_confidential_or_lifts_it(
    client, login, patient, clinician, team, clinician_document, observation, membership, state
):
    """Every kind of item: another team caring for the patient reads it, and neither sees
    the control nor may mark it or lift its confidentiality (404, the item unchanged)."""
    other = CareTeamFactory(name="Cabinet voisin")
    CareLinkFactory(patient=patient, team=other)
    prescription = Prescription.objects.create(
        patient=patient, medication="Ramipril", dosage="1", frequency="1/j", start_date=datetime.date(2026, 1, 1),
        prescriber=clinician, team=team,
    )  # fmt: skip
    allergy = Allergy.objects.create(patient=patient, author=clinician, team=team, substance="Iode")
    weight = Measurement.objects.create(
        patient=patient, author=clinician, team=team, kind="weight", value=70, measured_on=datetime.date(2026, 1, 1)
    )
    items = {"document": clinician_document, "lab_report": observation.report, "prescription": prescription,
             "allergy": allergy, "measurement": weight}  # fmt: skip
    patient.care_links.filter(team=team).update(status=state)
    viewer = clinician if membership == "publishing team" else ClinicianFactory(teams=[other])
    allowed = may_correct(membership, state, False)
    login(viewer)
    page = whole_record(client, patient)
    history = client.get(reverse("records:measurement_history", args=[weight.pk])).content.decode()
    for kind, item in items.items():
        url = reverse("records:set_confidential", args=[kind, item.pk])
        assert (url in page) == allowed, kind
        if kind == "measurement":
            assert (url in history) == allowed
        answer = client.post(url, {"confidential": "1"})
        assert answer.status_code == (302 if allowed else 404), kind
        item.refresh_from_db()
        assert item.confidential == allowed, kind


# --- Documents -----------------------------------------------------------------------


@pytest.mark.parametrize("route", ["records:document", "records:download", "records:preview"])
def test_a_withdrawn_documents_page_is_shown_to_its_publishing_team_and_the_patient_only_and_its_file_to_no_one(
    client, login, clinician, team, patient, clinician_document, route
):
    """Withdrawn as published in error (another person's, perhaps): another team caring for
    the patient, even one linked afterwards, no longer gets it (404); the publishing team
    and the patient still open its page (the history links to it), which says why, but its
    file and its preview are served to no one."""
    other = CareTeamFactory(name="Service de cardiologie")
    CareLinkFactory(patient=patient, team=other)
    services.withdraw_document(actor=clinician, team=team, document=clinician_document, reason="Mauvais dossier")
    url = reverse(route, args=[clinician_document.pk])
    login(ClinicianFactory(teams=[other]))
    assert client.get(url).status_code == 404
    page = whole_record(client, patient)
    assert "Compte rendu de consultation" not in page
    for reader in (clinician, patient.user):
        login(reader)
        answer = client.get(url)
        if route == "records:document":
            assert answer.status_code == 200, reader
            page = answer.content.decode()
            assert "Mauvais dossier" in page
            for served in ("records:download", "records:preview"):
                assert reverse(served, args=[clinician_document.pk]) not in page
        else:
            assert answer.status_code == 404, reader


def test_a_withdrawn_document_leaves_the_lists_and_stays_in_the_history(
    client, login, clinician, team, patient, clinician_document, django_capture_on_commit_callbacks
):
    login(clinician)
    url = reverse("records:withdraw_document", args=[clinician_document.pk])
    assert "Motif du retrait" in client.get(url).content.decode()
    fresh_digests()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"reason": "Classé dans le mauvais dossier"})
    assert response["Location"] == reverse("careteams:patient_documents", args=[patient.pk])
    clinician_document.refresh_from_db()
    assert clinician_document.withdrawn_by == clinician and clinician_document.withdrawn_at is not None
    event = RecordEvent.objects.get()
    assert (event.kind, event.actor, event.team, event.document, event.reason) == (
        "document_withdrawn", clinician, team, clinician_document, "Classé dans le mauvais dossier",
    )  # fmt: skip
    # The patient is told, without content.
    assert News.objects.filter(kind="withdrawal", document=clinician_document).exists()
    body = mail.outbox[-1].body
    assert "Un document a été retiré par une équipe de soins." in body and "Compte rendu" not in body
    login(patient)
    assert list(client.get(reverse("records:documents")).context["page"].object_list) == []
    assert clinician_document.pk not in [row["pk"] for row in client.get(reverse("patient_home")).context["documents"]]
    history = client.get(reverse("records:record_history")).content.decode()
    assert "Retrait d’un document" in history and "Classé dans le mauvais dossier" in history
    assert reverse("records:document", args=[clinician_document.pk]) in history
    page = client.get(reverse("records:document", args=[clinician_document.pk])).content.decode()
    assert f"Retiré par {team.name} le" in page and "Classé dans le mauvais dossier" in page
    # The original is kept (its hash still verifies), but served to no one.
    from records import files

    assert files.load(clinician_document.file_name, clinician_document.sha256)
    assert client.get(reverse("records:download", args=[clinician_document.pk])).status_code == 404


def test_a_corrected_version_supersedes_the_old_one(
    client, login, clinician, team, patient, clinician_document, upload, django_capture_on_commit_callbacks
):
    login(clinician)
    page = client.get(reverse("records:document", args=[clinician_document.pk])).content.decode()
    assert reverse("records:replace_document", args=[clinician_document.pk]) in page
    data = {"title": "Compte rendu corrigé", "category": "report", "care_date": "2026-10-02",
            "reason": "Posologie erronée", "file": upload()}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("records:replace_document", args=[clinician_document.pk]), data)
    new = Document.objects.get(title="Compte rendu corrigé")
    clinician_document.refresh_from_db()
    assert clinician_document.replaced_by == new and new.author_team == team
    assert RecordEvent.objects.get().kind == "document_replaced"
    assert list(News.objects.filter(document=new).values_list("kind", flat=True)) == ["correction"]  # one, not two
    login(patient)
    assert list(client.get(reverse("records:documents")).context["page"].object_list) == [new]
    new_page = client.get(reverse("records:document", args=[new.pk])).content.decode()
    assert "elle remplace une version antérieure" in new_page
    assert reverse("records:document", args=[clinician_document.pk]) in new_page
    old_page = client.get(reverse("records:document", args=[clinician_document.pk])).content.decode()
    assert "Une version corrigée remplace ce document." in old_page
    assert reverse("records:document", args=[new.pk]) in old_page


@pytest.mark.parametrize("ticked", [True, False])
def test_a_corrected_version_is_as_confidential_as_the_form_says_ticked_as_the_old_one(
    client, login, clinician, clinician_document, upload, ticked
):
    services.set_confidential(item=clinician_document, confidential=True)
    login(clinician)
    form = client.get(reverse("records:replace_document", args=[clinician_document.pk])).context["form"]
    assert form["confidential"].value() is True  # kept unless the clinician unticks it
    data = {"title": "Compte rendu corrigé", "category": "report", "care_date": "2026-10-02",
            "reason": "Posologie erronée", "file": upload()}  # fmt: skip
    if ticked:
        data["confidential"] = "on"
    client.post(reverse("records:replace_document", args=[clinician_document.pk]), data)
    assert Document.objects.get(title="Compte rendu corrigé").confidential is ticked


def test_a_corrected_version_told_nothing_of_confidentiality_keeps_the_old_ones(clinician, team, clinician_document):
    services.set_confidential(item=clinician_document, confidential=True)
    new = services.replace_document(
        actor=clinician, team=team, document=clinician_document, data=services.read_document(document=clinician_document),
        content_type="application/pdf", title="V2", category="report", care_date=clinician_document.care_date,
        reason="Erreur",
    )  # fmt: skip
    assert new.confidential


def test_a_corrected_version_of_a_document_the_patient_hid_stays_hidden(
    client, login, clinician, team, patient, clinician_document, upload
):
    """The patient hid the document from professionals; its publishing team corrects
    it: the new version is hidden too (from another team caring for the patient, who
    sees neither, over HTTP), and the patient's page of it says so."""
    other = ClinicianFactory(teams=[CareTeamFactory()])
    CareLinkFactory(patient=patient, team=other.memberships.get().team)
    login(patient.user)
    client.post(reverse("records:set_hidden", args=[clinician_document.pk]), {"hidden": "1"})
    login(clinician)
    data = {"title": "Compte rendu corrigé", "category": "report", "care_date": "2026-10-02",
            "reason": "Posologie erronée", "file": upload()}  # fmt: skip
    client.post(reverse("records:replace_document", args=[clinician_document.pk]), data)
    new = Document.objects.get(title="Compte rendu corrigé")
    assert new.hidden
    assert client.get(reverse("records:document", args=[new.pk])).status_code == 200  # its publishing team
    login(other)
    for document in (clinician_document, new):
        assert client.get(reverse("records:document", args=[document.pk])).status_code == 404
        assert client.get(reverse("records:download", args=[document.pk])).status_code == 404
    listed = client.get(reverse("careteams:patient_documents", args=[patient.pk])).context["page"].object_list
    assert new not in listed and clinician_document not in listed
    login(patient.user)
    page = client.get(reverse("records:document", args=[new.pk]))
    assert page.context["document"].hidden


def test_a_withdrawn_or_replaced_document_is_not_corrected_again(client, login, clinician, team, clinician_document):
    services.withdraw_document(actor=clinician, team=team, document=clinician_document, reason="Erreur")
    with pytest.raises(services.AlreadyCorrected):
        services.withdraw_document(actor=clinician, team=team, document=clinician_document, reason="Encore")
    login(clinician)
    response = client.post(reverse("records:withdraw_document", args=[clinician_document.pk]), {"reason": "Encore"})
    assert response.status_code == 302
    assert RecordEvent.objects.count() == 1
    page = client.get(reverse("records:document", args=[clinician_document.pk])).content.decode()
    assert reverse("records:withdraw_document", args=[clinician_document.pk]) not in page


def test_a_file_that_fails_the_checks_is_said_on_the_form_and_nothing_changes(
    client, login, clinician, clinician_document
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    login(clinician)
    data = {"title": "X", "category": "report", "care_date": "2026-10-02", "reason": "Y",
            "file": SimpleUploadedFile("x.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")}  # fmt: skip
    response = client.post(reverse("records:replace_document", args=[clinician_document.pk]), data)
    assert response.status_code == 200 and response.context["form"].errors["file"]
    assert Document.objects.count() == 1 and not RecordEvent.objects.exists()


def test_the_patients_own_document_cannot_be_withdrawn_by_a_team(client, login, clinician, patient_document):
    login(clinician)
    assert client.get(reverse("records:withdraw_document", args=[patient_document.pk])).status_code == 404


# --- Lab values ---------------------------------------------------------------------


def test_a_corrected_value_shows_as_corrected_and_keeps_the_earlier_one(
    client, login, clinician, team, patient, observation, django_capture_on_commit_callbacks
):
    login(clinician)
    detail = client.get(reverse("careteams:patient_results", args=[patient.pk])).content.decode()
    url = reverse("records:correct_observation", args=[observation.pk])
    assert url in detail
    assert client.post(url, {"value": "1.52", "reason": "x"}).context["form"].errors["value"]  # unchanged
    fresh_digests()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"value": "1,25".replace(",", "."), "reason": "Erreur de saisie"})
    observation.refresh_from_db()
    assert (observation.value, observation.status) == (Decimal("1.25"), "corrected")
    assert observation.corrected_at is not None
    revision = ObservationRevision.objects.get()
    assert (revision.value, revision.reason) == (Decimal("1.52"), "Erreur de saisie")
    event = RecordEvent.objects.get()
    assert (event.kind, event.observation, event.team) == ("result_corrected", observation, team)
    assert News.objects.get().kind == "correction"
    assert "Un élément de votre dossier a été corrigé." in mail.outbox[-1].body
    assert "1,25" not in mail.outbox[-1].body and "Glucose" not in mail.outbox[-1].body
    login(patient)
    today = timezone.localdate().strftime("%d/%m/%Y")
    assert f"Corrigé le {today}" in client.get(reverse("records:results")).content.decode()
    history = client.get(reverse("records:observation_history", args=[observation.pk])).content.decode()
    assert f"Corrigé le {today} ; valeur antérieure : 1,52 g/L" in history and "Erreur de saisie" in history
    record = client.get(reverse("records:record_history")).content.decode()
    assert "Correction d’une valeur de biologie" in record and "Erreur de saisie" in record


def test_an_amended_report_from_software_is_a_correction_too(clinician, team, patient, observation):
    report = observation.report
    report.source_id = "LAB-1"
    report.save(update_fields=["source_id"])
    services.publish_lab_report(
        author=clinician, team=team, patient=patient, source_id="LAB-1", title="Bilan",
        collected_on=datetime.date(2026, 10, 1), status="amended",
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1.3"), "unit": "g/L"}],
    )  # fmt: skip
    observation.refresh_from_db()
    assert observation.corrected_at is not None
    assert RecordEvent.objects.filter(kind="result_corrected", observation=observation).count() == 1
    assert News.objects.filter(kind="correction", lab_report=report).exists()


# --- Profile entries and the patient's comments --------------------------------------


def test_a_clinician_writes_an_allergy_the_patient_may_comment_on_but_not_remove(
    client, login, clinician, team, patient
):
    login(clinician)
    detail = client.get(reverse("careteams:patient_detail", args=[patient.pk])).content.decode()
    url = reverse("records:clinician_add_profile_entry", args=[patient.pk, "allergy"])
    assert url in detail
    client.post(url, {"substance": "Pénicilline", "reaction": "œdème", "severity": "severe"})
    allergy = Allergy.objects.get()
    assert (allergy.author, allergy.team, allergy.patient) == (clinician, team, patient)
    assert RecordEvent.objects.get().kind == "profile_added"

    login(patient)
    profile = client.get(reverse("records:profile")).content.decode()
    assert "Pénicilline" in profile and "Claire Martin" in profile and team.name in profile
    assert reverse("records:delete_profile_entry", args=["allergy", allergy.pk]) not in profile
    comment_url = reverse("records:comment_profile_entry", args=["allergy", allergy.pk])
    assert comment_url in profile
    client.post(reverse("records:delete_profile_entry", args=["allergy", allergy.pk]))
    assert Allergy.objects.filter(pk=allergy.pk).exists()
    assert client.post(comment_url, {"body": "Je n’y suis pas allergique."})["Location"] == reverse("records:profile")
    comment = ProfileComment.objects.get()
    assert (comment.allergy, comment.author, comment.patient) == (allergy, patient.user, patient)
    assert "Je n’y suis pas allergique." in client.get(reverse("records:profile")).content.decode()

    login(clinician)
    detail = client.get(reverse("careteams:patient_detail", args=[patient.pk])).content.decode()
    assert "Commentaire du patient du" in detail and "Je n’y suis pas allergique." in detail


PROFILE_ENTRIES = {  # (the secret one's fields, the open one's)
    "allergy": ({"substance": "Latex", "severity": "mild"}, {"substance": "Pollen", "severity": "mild"}),
    "condition": ({"name": "Contraception"}, {"name": "Asthme"}),
    "vaccination": ({"vaccine": "Papillomavirus", "date": "2026-01-05"}, {"vaccine": "Tétanos", "date": "2026-01-05"}),
    "measurement": (
        {"kind": "weight", "value": "47.5", "measured_on": "2026-01-05"},
        {"kind": "weight", "value": "48.5", "measured_on": "2026-01-06"},
    ),
}


def _profile_pks(context, kind):
    if kind == "measurement":
        return {row.pk for trend in context["measurements"] for row in trend["rows"]}
    return {entry.pk for entry in context[f"{kind}s" if kind != "allergy" else "allergies"]}


@pytest.mark.parametrize("kind", PROFILE_ENTRIES)
def test_a_minors_confidential_profile_entry_never_reaches_the_parents(
    client, login, clinician, team, minor, parent, kind
):
    """A minor's secret care in the medical profile, as for documents: the care team ticks
    the box; the parent reads neither the entry nor its event in the record's history;
    the patient side's forms have no such box."""
    secret_fields, open_fields = PROFILE_ENTRIES[kind]
    login(clinician)
    url = reverse("records:clinician_add_profile_entry", args=[minor.pk, kind])
    assert 'name="confidential"' in client.get(url).content.decode()
    client.post(url, {**secret_fields, "confidential": "on"})
    client.post(url, open_fields)
    secret, shown = PROFILE_MODELS[kind].objects.order_by("pk")
    assert (secret.confidential, shown.confidential) == (True, False)
    detail = client.get(reverse("careteams:patient_detail", args=[minor.pk]))
    assert _profile_pks(detail.context, kind) == {secret.pk, shown.pk}  # the care team reads both

    login(parent)
    switch(client, minor)
    profile = client.get(reverse("records:profile"))
    assert _profile_pks(profile.context, kind) == {shown.pk}
    assert 'name="confidential"' not in profile.content.decode()
    history = client.get(reverse("records:record_history")).content.decode()
    assert shown.describe() in history and secret.describe() not in history


@pytest.mark.parametrize("kind", PROFILE_ENTRIES)
def test_a_care_team_keeps_a_profile_entry_from_the_representatives_afterwards(
    client, login, clinician, team, minor, parent, kind
):
    """Every kind of entry, measurements included (from their table on the record page and
    on their history page), can be made confidential after it was written."""
    login(clinician)
    fields, _ = PROFILE_ENTRIES[kind]
    client.post(reverse("records:clinician_add_profile_entry", args=[minor.pk, kind]), fields)
    entry = PROFILE_MODELS[kind].objects.get()
    login(parent)
    switch(client, minor)
    assert _profile_pks(client.get(reverse("records:profile")).context, kind) == {entry.pk}
    login(clinician)
    toggle = reverse("records:set_confidential", args=[kind, entry.pk])
    assert toggle in client.get(reverse("careteams:patient_detail", args=[minor.pk])).content.decode()
    if kind == "measurement":
        assert toggle in client.get(reverse("records:measurement_history", args=[entry.pk])).content.decode()
    client.post(toggle, {"confidential": "1"})
    entry.refresh_from_db()
    assert entry.confidential
    login(parent)
    switch(client, minor)
    assert _profile_pks(client.get(reverse("records:profile")).context, kind) == set()
    assert entry.describe() not in client.get(reverse("records:record_history")).content.decode()


def test_an_unknown_profile_kind_is_404(client, login, clinician, patient):
    login(clinician)
    assert client.get(reverse("records:clinician_add_profile_entry", args=[patient.pk, "diary"])).status_code == 404


def test_a_comment_is_on_exactly_one_entry(patient, clinician, team):
    from django.db import IntegrityError, transaction

    allergy = Allergy.objects.create(patient=patient, author=clinician, team=team, substance="Iode")
    with pytest.raises(IntegrityError), transaction.atomic():
        ProfileComment.objects.create(patient=patient, author=patient.user, body="x")
    assert services.comment_profile_entry(author=patient.user, entry=allergy, body=" Faux ").body == "Faux"


def test_the_profile_with_comments_does_not_query_per_entry(client, login, clinician, team, patient):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def add(n):
        for i in range(n):
            allergy = Allergy.objects.create(patient=patient, author=clinician, team=team, substance=f"S{i}")
            services.comment_profile_entry(author=patient.user, entry=allergy, body="Faux")

    def count(who, url):
        login(who)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    urls = [(patient, reverse("records:profile")), (clinician, reverse("careteams:patient_detail", args=[patient.pk]))]
    add(1)
    few = [count(who, url) for who, url in urls]
    add(8)
    assert [count(who, url) for who, url in urls] == few


def test_a_value_corrected_twice_keeps_both_earlier_values(clinician, team, patient, observation):
    services.correct_observation(actor=clinician, team=team, observation=observation, value=Decimal("1"), reason="x")
    services.correct_observation(actor=clinician, team=team, observation=observation, value=Decimal("2"), reason="y")
    assert list(observation.revisions.values_list("value", flat=True)) == [Decimal("1"), Decimal("1.52")]
    assert Observation.objects.get().value == Decimal("2")


def test_the_record_history_pages_from_a_cursor(client, login, clinician, team, patient):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for n in range(30):
        services.add_profile_entry(
            entry=Allergy(patient=patient, substance=f"Substance {n}"), author=clinician, team=team
        )
    login(patient)
    url = reverse("records:record_history")
    first = client.get(url).context["page"]
    assert len(first.object_list) == 25 and first.older
    with CaptureQueriesContext(connection) as queries:
        second = client.get(url, {"older": first.older}).context["page"]
    assert len(second.object_list) == 5
    assert " OFFSET " not in " ".join(q["sql"] for q in queries.captured_queries).upper()
    assert {e.pk for e in first.object_list}.isdisjoint(e.pk for e in second.object_list)


# --- The record's history as representatives read it: every kind of item × confidential ---


def _corrected(kind, *, clinician, team, patient, upload, confidential):
    """One item of ``kind`` the team published for ``patient`` (confidential or not), then
    corrected: the event of the record's history it makes, and the item's name."""
    title = f"{kind} {'secret' if confidential else 'ouvert'}"
    if kind == "document":
        document = services.upload_document(
            author=clinician, patient=patient, upload=upload(), title=title, category="report",
            care_date=datetime.date(2026, 10, 2), team=team, confidential=confidential,
        )  # fmt: skip
        services.withdraw_document(actor=clinician, team=team, document=document, reason="Mauvais dossier")
    elif kind == "prescription":
        prescription = Prescription.objects.create(
            patient=patient, prescriber=clinician, team=team, medication=title, dosage="1 cp", frequency="1/j",
            start_date=datetime.date(2026, 10, 1), confidential=confidential,
        )  # fmt: skip
        services.stop_prescription(
            actor=clinician, team=team, prescription=prescription, stopped_on=datetime.date(2026, 10, 5), reason="Fin"
        )
    else:
        report = services.add_lab_report(
            author=clinician, team=team, patient=patient, title="Bilan", collected_on=datetime.date(2026, 10, 1),
            observations=[{"loinc": "2345-7", "name": title, "value": Decimal("1.52"), "unit": "g/L"}],
            confidential=confidential,
        )  # fmt: skip
        services.correct_observation(
            actor=clinician, team=team, observation=report.observations.get(), value=Decimal("1.25"), reason="Saisie"
        )
    return RecordEvent.objects.latest("pk"), title


def test_representatives_read_every_correction_of_the_record_but_a_confidential_items(
    client, login, clinician, team, minor, parent, upload
):
    """A parent acts for the whole record: they read the corrections of documents, results
    and prescriptions alike (before, only those of prescriptions), never one about an
    item the team made confidential; the record's holder reads them all."""
    events = {
        (kind, confidential): _corrected(
            kind, clinician=clinician, team=team, patient=minor, upload=upload, confidential=confidential
        )
        for kind, confidential in itertools.product(("document", "prescription", "result"), (False, True))
    }
    record = next(found for found in access.records_of(parent.user) if found.patient == minor)
    seen = set(access.rows_in_record(record, RecordEvent))
    assert seen == {event for (_kind, confidential), (event, _title) in events.items() if not confidential}
    login(parent)
    switch(client, minor)
    page = client.get(reverse("records:record_history")).content.decode()
    for (_kind, confidential), (_event, title) in events.items():
        assert (title in page) is not confidential, title


@pytest.mark.parametrize("kind", PROFILE_ENTRIES)
def test_the_care_team_that_wrote_a_profile_entry_withdraws_it_with_a_reason(
    client, login, clinician, team, patient, kind
):
    """Entered in error: the team that wrote it withdraws it; it leaves the profile (the
    patient's, the care team's, the archive's FHIR bundle) and the record's history says
    who, when and why. Withdrawing it again (a second tab) changes nothing."""
    fields, _ = PROFILE_ENTRIES[kind]
    login(clinician)
    client.post(reverse("records:clinician_add_profile_entry", args=[patient.pk, kind]), fields)
    entry = PROFILE_MODELS[kind].objects.get()
    assert _profile_resources(patient)  # the archive's bundle holds it, until withdrawn
    url = reverse("records:withdraw_profile_entry", args=[kind, entry.pk])
    assert url in client.get(reverse("careteams:patient_detail", args=[patient.pk])).content.decode()
    refused = client.post(url, {"reason": ""})
    assert refused.status_code == 200 and refused.context["form"].errors["reason"]
    done = client.post(url, {"reason": "Saisi dans le mauvais dossier"})
    assert done.status_code == 302
    assert not PROFILE_MODELS[kind].objects.exists() and PROFILE_MODELS[kind].all_entries.get().withdrawn_at
    detail = client.get(reverse("careteams:patient_detail", args=[patient.pk]))
    assert _profile_pks(detail.context, kind) == set()
    # Gone from the profile, it is gone from the policy's lookups too: a second tab's form is a 404.
    assert client.post(url, {"reason": "Encore"}).status_code == 404
    assert RecordEvent.objects.filter(kind=RecordEvent.Kind.PROFILE_WITHDRAWN).count() == 1
    login(patient.user)
    assert _profile_pks(client.get(reverse("records:profile")).context, kind) == set()
    history = client.get(reverse("records:record_history")).content.decode()
    assert "Retrait de votre profil médical" in history and "Saisi dans le mauvais dossier" in history
    assert not _profile_resources(patient)


def _profile_resources(patient):
    """The archive's FHIR bundle's resources other than the patient and the record's own."""
    from records.export_builders import fhir_bundle

    bundle = fhir_bundle(
        user=patient.user, patient=patient, documents=[], conversations=[], document_paths={}, document_hashes={},
        attachment_files={},
    )  # fmt: skip
    kinds = {"AllergyIntolerance", "Condition", "Immunization", "Observation"}
    return [entry for entry in bundle["entry"] if entry["resource"]["resourceType"] in kinds]


@pytest.mark.parametrize("who", ["other_clinician", "patient", "support"])
def test_only_the_team_that_wrote_a_profile_entry_withdraws_it(
    request, client, login, clinician, team, patient, other_team, who
):
    """Another team's clinician, even one caring for the patient, the patient and support:
    404, and the entry stays. A patient's own entry has no care team to withdraw it."""
    CareLinkFactory(patient=patient, team=other_team)
    written = services.add_profile_entry(entry=Allergy(patient=patient, substance="Latex"), author=clinician, team=team)
    own = services.add_profile_entry(entry=Allergy(patient=patient, substance="Pollen"), author=patient.user)
    login(request.getfixturevalue(who) if who != "patient" else patient.user)
    for entry in (written, own):
        url = reverse("records:withdraw_profile_entry", args=["allergy", entry.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, {"reason": "Erreur"}).status_code == 404
    login(clinician)
    assert client.get(reverse("records:withdraw_profile_entry", args=["allergy", own.pk])).status_code == 404
    assert Allergy.objects.count() == 2


def test_a_confidential_entrys_withdrawal_stays_from_the_parents(client, login, clinician, team, minor, parent):
    secret = services.add_profile_entry(
        entry=Allergy(patient=minor, substance="Latex", confidential=True), author=clinician, team=team
    )
    services.withdraw_profile_entry(actor=clinician, team=team, entry=secret, reason="Erreur de saisie")
    login(parent)
    switch(client, minor)
    history = client.get(reverse("records:record_history")).content.decode()
    assert "Latex" not in history and "Erreur de saisie" not in history


@pytest.mark.parametrize("stored", ["Sent by the prescribing software", "Envoyé par le logiciel prescripteur"])
def test_softwares_reason_is_shown_in_the_readers_language(client, login, clinician, team, patient, stored):
    """Stored in English (or in French, as rows written before were): read in the reader's
    language; a person's own reason as they wrote it."""
    prescription = Prescription.objects.create(
        patient=patient, medication="Ramipril", dosage="1", frequency="1/j", start_date=datetime.date(2026, 1, 1),
        prescriber=clinician, team=team, stopped_on=datetime.date(2026, 2, 1), stop_reason=stored,
    )  # fmt: skip
    RecordEvent.objects.create(
        patient=patient, actor=clinician, team=team, kind=RecordEvent.Kind.PRESCRIPTION_STOPPED, target="Ramipril",
        reason=stored, prescription=prescription,
    )  # fmt: skip
    login(patient.user)
    for language, shown in (("en", "Sent by the prescribing software"), ("fr", "Envoyé par le logiciel prescripteur")):
        headers = {"accept-language": language}
        client.cookies.pop("django_language", None)
        for url in (reverse("records:record_history"), reverse("records:prescriptions")):
            page = client.get(url, headers=headers).content.decode()
            assert shown in page, (language, url)


def test_the_access_history_names_a_corrected_value_as_people_write_it(client, login, clinician, patient, observation):
    from portal.audit.models import AccessLog

    login(clinician)
    client.get(reverse("records:correct_observation", args=[observation.pk]))
    assert AccessLog.objects.filter(patient=patient).latest("pk").target == "Glucose 1,52 g/L"
    login(patient.user)
    page = client.get(reverse("records:access_history")).content.decode()
    assert "Glucose 1,52 g/L" in page and "1.5200" not in page


def test_a_prescription_not_begun_yet_is_stopped_from_its_first_day(client, login, clinician, team, patient):
    """The stop form proposes today, or the first day of a prescription that has not
    begun: what it proposes is taken; a day before the start says which day it starts."""
    start = timezone.localdate() + datetime.timedelta(days=5)
    prescription = Prescription.objects.create(
        patient=patient, medication="Amoxicilline", dosage="1 g", frequency="2/j", start_date=start,
        prescriber=clinician, team=team,
    )  # fmt: skip
    login(clinician)
    url = reverse("records:stop_prescription", args=[prescription.pk])
    assert client.get(url).context["form"]["stopped_on"].value() == start
    early = client.post(url, {"stopped_on": (start - datetime.timedelta(days=1)).isoformat(), "reason": "Erreur"})
    assert f"L’ordonnance commence le {start:%d/%m/%Y}" in early.content.decode()
    client.post(url, {"stopped_on": start.isoformat(), "reason": "Erreur"})
    prescription.refresh_from_db()
    assert prescription.stopped_on == start
