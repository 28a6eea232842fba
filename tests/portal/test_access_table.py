"""The access policy as a generated table, checked against a plain statement of the rule.

Every combination that matters for a clinician and a patient's item is built at once:
three care teams T1, T2, T3; a patient for every state of their three links (none,
active, ended, blocked: 4³ = 64 patients); on each record a document published by
each team and one by the patient, hidden or not; a conversation and an appointment
with each linked team, and a prescription; a clinician for every membership in 0 to 3 of the teams
(8), each once as is and once individually blocked by every patient. The policy's
answer for every (clinician, item) pair is compared with ``may_see`` below, which
says the rule in the words of the design notes and shares no code with it.

The HTTP part then asks the real pages (document, download, preview, the patient's
page) for the combinations around a hidden document of a team that was blocked or
left, and every appointment route (the team's, the patient's, the agenda) for eight
kinds of viewer and three states of the booking team's link.
"""

import datetime
import itertools

import pytest
from django.urls import reverse

from agenda.models import Appointment
from messaging.models import Conversation
from portal import access
from portal.accounts.models import Patient, User
from portal.careteams.models import CareLink, ClinicianBlock, Membership
from records import services
from records.models import Document, Prescription
from tests.factories import (
    AppointmentFactory,
    CareLinkFactory,
    CareTeamFactory,
    ClinicianFactory,
    PatientFactory,
    UserFactory,
)
from tests.records.conftest import PNG

pytestmark = pytest.mark.django_db

TEAMS = ("T1", "T2", "T3")
LINK_STATES = (None, CareLink.Status.ACTIVE, CareLink.Status.ENDED, CareLink.Status.BLOCKED)
PUBLISHERS = (*TEAMS, None)  # None: the patient uploaded it
WITHDRAWN_AT = datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC)


def may_see(*, member_of, blocked, links, kind, team=None, hidden=False, withdrawn=False):
    """The rule, stated once and plainly. A clinician's rights on a patient come only
    through their teams with an active link; an individual block removes them all.
    A hidden document, or one withdrawn as published in error, is seen only by its
    publishing team, while that team's link is active. A conversation, or an
    appointment, is seen only through its own team."""
    active = {name for name in member_of if links[name] == CareLink.Status.ACTIVE}
    if blocked or not active:
        return False
    if kind == "document":
        return not (hidden or withdrawn) or team in active
    if kind in ("conversation", "appointment"):
        return team in active
    return True  # prescriptions, results, profile: any active team


@pytest.fixture
def universe(db):
    teams = {name: CareTeamFactory(name=f"Équipe {name}") for name in TEAMS}
    author = ClinicianFactory()
    patients = {}
    for states in itertools.product(LINK_STATES, repeat=len(TEAMS)):
        patients[states] = Patient(first_name="P", last_name="-".join(str(s) for s in states), birth_date="1980-01-01")
    Patient.objects.bulk_create(patients.values())
    links, documents, conversations, prescriptions, appointments = [], [], [], [], []
    starts = datetime.datetime(2026, 10, 25, 9, 0, tzinfo=datetime.UTC)
    for states, patient in patients.items():
        for name, state in zip(TEAMS, states, strict=True):
            if state is not None:
                links.append(CareLink(patient=patient, team=teams[name], status=state))
                conversations.append(Conversation(patient=patient, team=teams[name], subject=name, started_by=author))
                appointments.append(
                    Appointment(
                        patient=patient, team=teams[name], starts_at=starts, ends_at=starts + datetime.timedelta(hours=1),
                        with_whom=name, created_by=author,
                    )
                )  # fmt: skip
        for publisher, hidden, withdrawn in itertools.product(PUBLISHERS, (False, True), (False, True)):
            documents.append(
                Document(
                    patient=patient,
                    title=f"{publisher}-{hidden}-{withdrawn}",
                    category="report",
                    care_date="2026-01-01",
                    author=author,
                    author_team=teams.get(publisher),
                    hidden=hidden,
                    withdrawn_at=WITHDRAWN_AT if withdrawn else None,
                    content_type="application/pdf",
                    size=1,
                    sha256="0" * 64,
                    key_id="k",
                    file_name=f"{patient.last_name}-{publisher}-{hidden}-{withdrawn}",
                )
            )
        prescriptions.append(
            Prescription(
                patient=patient,
                medication="M",
                dosage="1",
                frequency="1",
                start_date="2026-01-01",
                prescriber=author,
                team=teams["T1"],
            )
        )
    CareLink.objects.bulk_create(links)
    Document.objects.bulk_create(documents)
    Conversation.objects.bulk_create(conversations)
    Prescription.objects.bulk_create(prescriptions)
    Appointment.objects.bulk_create(appointments)
    clinicians = []
    for size in range(len(TEAMS) + 1):
        for member_of in itertools.combinations(TEAMS, size):
            for blocked in (False, True):
                clinician = ClinicianFactory(teams=[teams[name] for name in member_of])
                if blocked:
                    ClinicianBlock.objects.bulk_create(
                        ClinicianBlock(patient=patient, clinician=clinician) for patient in patients.values()
                    )
                clinicians.append((clinician, set(member_of), blocked))
    return teams, patients, clinicians


def test_policy_matches_the_rule_for_every_combination(universe, settings):
    # Every answer is compared with the rule below: a prepared query that sent other SQL
    # than its values build would give another answer, so its own check adds nothing here.
    settings.PREPARED_QUERIES_CHECK = False
    teams, patients, clinicians = universe
    team_name = {team.pk: name for name, team in teams.items()}
    link_states = {patient.pk: dict(zip(TEAMS, states, strict=True)) for states, patient in patients.items()}
    all_documents = list(Document.objects.all())
    all_conversations = list(Conversation.objects.all())
    all_prescriptions = list(Prescription.objects.all())
    all_appointments = list(Appointment.objects.all())
    assert len(all_documents) == 64 * 16 and len(all_conversations) == 3 * 48 and len(clinicians) == 16
    checked = 0
    for clinician, member_of, blocked in clinicians:

        def rule(patient_id, kind, team_id=None, hidden=False, withdrawn=False, who=(member_of, blocked)):
            return may_see(
                member_of=who[0], blocked=who[1], links=link_states[patient_id], kind=kind,
                team=team_name.get(team_id), hidden=hidden, withdrawn=withdrawn,
            )  # fmt: skip

        expected = {
            d.pk
            for d in all_documents
            if rule(d.patient_id, "document", d.author_team_id, d.hidden, bool(d.withdrawn_at))
        }
        assert set(access.documents_visible_to(clinician).values_list("pk", flat=True)) == expected, (
            member_of,
            blocked,
        )
        expected = {c.pk for c in all_conversations if rule(c.patient_id, "conversation", c.team_id)}
        assert set(access.conversations_for(clinician).values_list("pk", flat=True)) == expected
        expected = {a.pk for a in all_appointments if rule(a.patient_id, "appointment", a.team_id)}
        assert set(access.appointments_visible_to(clinician).values_list("pk", flat=True)) == expected
        expected = {p.pk for p in all_prescriptions if rule(p.patient_id, "prescription")}
        assert set(access.items_visible_to(clinician, Prescription).values_list("pk", flat=True)) == expected
        expected = {p.pk for p in patients.values() if rule(p.pk, "record")}
        assert set(access.patients_cared_for(clinician).values_list("pk", flat=True)) == expected
        checked += len(all_documents) + len(all_conversations) + len(all_appointments)
        checked += len(all_prescriptions) + len(patients)
        # A page about one patient lists their rows through items_of_patient: for a
        # patient get_cared_patient returned, the patient's rows without the cared-for
        # subquery; for any other instance, the general sets narrowed. The same rows.
        for patient in patients.values():
            if rule(patient.pk, "record"):
                patient = access.get_cared_patient(clinician, patient.pk)
                assert patient._cared_for_by == clinician.pk
            for model, rows, kind in ((Document, all_documents, "document"), (Prescription, all_prescriptions, "")):
                mine = [row for row in rows if row.patient_id == patient.pk]
                expected = {row.pk for row in mine if rule(patient.pk, kind or "prescription",
                                                           getattr(row, "author_team_id", None),
                                                           getattr(row, "hidden", False),
                                                           bool(getattr(row, "withdrawn_at", None)))}  # fmt: skip
                found = set(access.items_of_patient(clinician, patient, model).values_list("pk", flat=True))
                assert found == expected, (member_of, blocked, model.__name__, patient.last_name)
                checked += len(mine)
            # The patient's page says which active links the clinician may end (those of
            # their teams, when they care for the patient), and reads through the first.
            links = access.links_of_cared_patient(clinician, patient)
            expected = {
                name for name in member_of if rule(patient.pk, "record") and link_states[patient.pk][name] == "active"
            }
            assert {team_name[link.team_id] for link in links if link.mine} == expected
            assert {link.pk for link in links if link.mine} == set(
                access.links_managed_by(clinician).filter(patient=patient).values_list("pk", flat=True)
            )
            first = next((link.team for link in links if link.mine), None)
            assert first == (access.team_caring_for(clinician, patient) if expected else None)
    assert checked == 16 * (1024 + 144 + 144 + 64 + 64 + 1024 + 64)


def test_the_rule_itself_says_what_the_issue_says():
    """The oracle is checked on the reported case, so a wrong oracle cannot pass the table."""
    links = {"T1": CareLink.Status.ACTIVE, "T2": CareLink.Status.ACTIVE, "T3": CareLink.Status.BLOCKED}
    hidden_by_t3 = {"kind": "document", "team": "T3", "hidden": True}
    assert not may_see(member_of={"T2", "T3"}, blocked=False, links=links, **hidden_by_t3)
    assert not may_see(member_of={"T3"}, blocked=False, links=links, **hidden_by_t3)
    assert may_see(member_of={"T2", "T3"}, blocked=False, links=links, kind="document", team="T3", hidden=False)
    assert may_see(member_of={"T1"}, blocked=False, links=links, kind="document", team="T1", hidden=True)
    assert not may_see(member_of={"T2"}, blocked=False, links=links, kind="document", team="T1", hidden=True)
    assert not may_see(member_of={"T1"}, blocked=True, links=links, kind="document", team="T1", hidden=False)
    # A document withdrawn as published in error: its publishing team only (another person's, perhaps).
    assert may_see(member_of={"T1"}, blocked=False, links=links, kind="document", team="T1", withdrawn=True)
    assert not may_see(member_of={"T2"}, blocked=False, links=links, kind="document", team="T1", withdrawn=True)


# --- Over HTTP: the pages that serve a document, for a hidden document of team T3 ---------


@pytest.mark.parametrize("t3_link", [CareLink.Status.ACTIVE, CareLink.Status.ENDED, CareLink.Status.BLOCKED])
@pytest.mark.parametrize(
    ("member_of", "blocked"),
    [({"T3"}, False), ({"T2", "T3"}, False), ({"T2"}, False), ({"T2", "T3"}, True), ({"T1", "T2", "T3"}, False)],
)
def test_hidden_document_pages_follow_the_rule(
    client, login, django_capture_on_commit_callbacks, t3_link, member_of, blocked
):
    teams = {name: CareTeamFactory(name=f"Équipe {name}") for name in TEAMS}
    patient = PatientFactory(last_name="Durand")
    links = {"T1": CareLink.Status.ACTIVE, "T2": CareLink.Status.ACTIVE, "T3": CareLink.Status.ACTIVE}
    for name in TEAMS:
        CareLinkFactory(patient=patient, team=teams[name])
    publisher = ClinicianFactory(teams=[teams["T3"]])
    from django.core.files.uploadedfile import SimpleUploadedFile

    with django_capture_on_commit_callbacks(execute=True):
        document = services.upload_document(
            author=publisher, patient=patient, team=teams["T3"], title="Compte rendu confidentiel",
            upload=SimpleUploadedFile("cr.png", PNG, content_type="image/png"), category="report",
            care_date=datetime.date(2026, 1, 1),
        )  # fmt: skip
    Document.objects.filter(pk=document.pk).update(hidden=True)
    CareLink.objects.filter(patient=patient, team=teams["T3"]).update(status=t3_link)
    links["T3"] = t3_link
    viewer = ClinicianFactory(teams=[teams[name] for name in member_of])
    if blocked:
        ClinicianBlock.objects.create(patient=patient, clinician=viewer)
    login(viewer)
    visible = may_see(member_of=member_of, blocked=blocked, links=links, kind="document", team="T3", hidden=True)
    for name in ("records:document", "records:download", "records:preview"):
        response = client.get(reverse(name, args=[document.pk]))
        assert response.status_code == (200 if visible else 404), (name, member_of, blocked, t3_link)
    record = client.get(reverse("careteams:patient_documents", args=[patient.pk]))
    sees_record = may_see(member_of=member_of, blocked=blocked, links=links, kind="record")
    assert record.status_code == (200 if sees_record else 404)
    assert (b"Compte rendu confidentiel" in record.content) is visible
    assert Membership.objects.filter(user=viewer).count() == len(member_of)


# --- Over HTTP: every appointment route, for an appointment of team T1 ---------------------

CLINICIAN_ROUTES = ("agenda:edit", "agenda:cancel")
PATIENT_ROUTES = ("agenda:ics", "agenda:patient_cancel", "agenda:reschedule")


@pytest.mark.parametrize("t1_link", [CareLink.Status.ACTIVE, CareLink.Status.ENDED, CareLink.Status.BLOCKED])
@pytest.mark.parametrize(
    "viewer",
    ["member T1", "member T1+T2", "member T2", "member T1, blocked", "no team", "the patient", "another patient",
     "support"],
)  # fmt: skip
def test_appointment_pages_follow_the_rule(client, login, t1_link, viewer):
    teams = {name: CareTeamFactory(name=f"Équipe {name}") for name in TEAMS}
    patient = PatientFactory(last_name="Durand")
    for name in ("T1", "T2"):
        CareLinkFactory(patient=patient, team=teams[name])
    appointment = AppointmentFactory(patient=patient, team=teams["T1"], with_whom="Dr Rendez-vous-marqueur")
    CareLink.objects.filter(patient=patient, team=teams["T1"]).update(status=t1_link)
    links = {"T1": t1_link, "T2": CareLink.Status.ACTIVE, "T3": None}
    member_of = {"member T1": {"T1"}, "member T1+T2": {"T1", "T2"}, "member T2": {"T2"}}.get(viewer, set())
    if viewer == "member T1, blocked":
        member_of = {"T1"}
    if viewer == "the patient":
        user = patient.user
    elif viewer == "another patient":
        user = PatientFactory().user
    elif viewer == "support":
        user = UserFactory(role=User.Role.SUPPORT)
    else:
        user = ClinicianFactory(teams=[teams[name] for name in member_of])
        if viewer.endswith("blocked"):
            ClinicianBlock.objects.create(patient=patient, clinician=user)
    login(user)
    is_clinician = user.role == User.Role.CLINICIAN
    team_sees = is_clinician and may_see(
        member_of=member_of, blocked=viewer.endswith("blocked"), links=links, kind="appointment", team="T1"
    )
    for route in CLINICIAN_ROUTES:
        response = client.get(reverse(route, args=[appointment.pk]))
        assert response.status_code == (200 if team_sees else 404), (route, viewer, t1_link)
    for route in PATIENT_ROUTES:
        response = client.get(reverse(route, args=[appointment.pk]))
        assert response.status_code == (200 if viewer == "the patient" else 404), (route, viewer, t1_link)
    booking = client.get(reverse("agenda:book", args=[patient.pk]))
    sees_record = is_clinician and may_see(
        member_of=member_of, blocked=viewer.endswith("blocked"), links=links, kind="record"
    )
    assert booking.status_code == (200 if sees_record else 404)
    # The team agenda of T1 on the appointment's day, when the viewer is in T1.
    if is_clinician and "T1" in member_of:
        day = appointment.local_start.date().isoformat()
        agenda = client.get(reverse("agenda:team_day"), {"team": teams["T1"].pk, "day": day})
        assert (b"Dr Rendez-vous-marqueur" in agenda.content) is team_sees
    mine = client.get(reverse("agenda:mine"))
    assert mine.status_code == (200 if user.role == User.Role.PATIENT else 404)
    assert (b"Dr Rendez-vous-marqueur" in mine.content) is (viewer == "the patient")
