"""Lists stay fast as data grows: a clinician with 2,000 patients and 2,000
conversations in the team inbox, a patient with 300 conversations."""

import datetime

from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from benchmarks.harness import against_floor, analyze, check_ok, load_average, measure, report, signed_in_client
from messaging.models import Conversation, Message
from portal.accounts.models import Patient, User
from portal.careteams.models import CareLink, CareTeam, Membership
from records.models import Document, LabReport, Observation


def seed(patients=2_000):
    team = CareTeam.objects.create(name="Cabinet de banc d'essai", kind=CareTeam.Kind.PRACTICE)
    clinician = User.objects.create_user("bench.clinician@example.org", "bench-password-123", role="clinician")
    Membership.objects.create(team=team, user=clinician)
    owner = User.objects.create_user("bench.patient@example.org", "bench-password-123", role="patient")
    records = Patient.objects.bulk_create(
        [
            Patient(
                first_name=f"Prénom{i}",
                last_name=f"Nom{i:05d}",
                birth_date="1980-01-01",
                user=owner if i == 0 else None,
            )
            for i in range(patients)
        ]
    )
    CareLink.objects.bulk_create([CareLink(patient=p, team=team) for p in records])
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(patient=records[i % 300 if i < 300 else i], team=team, subject=f"Sujet {i}", started_by=owner)
            for i in range(patients)
        ]
    )
    Message.objects.bulk_create(
        [Message(conversation=c, author=owner, body="Bonjour") for c in conversations for _ in range(3)]
    )
    seed_records(records[0], clinician, team)
    return clinician, owner


START, DAY = datetime.date(2020, 1, 1), datetime.timedelta(days=1)


def seed_records(patient, clinician, team, documents=10_000, reports=2_000):
    """A patient with 10,000 documents (rows only: list pages never read files)
    and 2,000 lab reports of 5 observations each."""
    Document.objects.bulk_create(
        [
            Document(patient=patient, title=f"Document {i}", category="other", care_date=START + DAY * (i % 2000),
                     author=clinician, author_team=team, content_type="application/pdf", size=1000, sha256="0" * 64,
                     key_id="dev", file_name=f"documents/{i}.bin", status="ready")
            for i in range(documents)
        ],
        batch_size=2000,
    )  # fmt: skip
    lab_reports = LabReport.objects.bulk_create(
        [
            LabReport(patient=patient, title="Bilan", collected_on=START + DAY * i, author=clinician, team=team)
            for i in range(reports)
        ],
        batch_size=2000,
    )  # fmt: skip
    Observation.objects.bulk_create(
        [
            Observation(report=report, patient=patient, loinc=f"2345-{n}", name=f"Analyse {n}", value=1, unit="g/L",
                        low=0.7, high=1.1)
            for report in lab_reports for n in range(5)
        ],
        batch_size=5000,
    )  # fmt: skip


def run():
    clinician, owner = seed()
    thread = Conversation.objects.create(
        patient=Patient.objects.get(user=owner), team=CareTeam.objects.get(), subject="Fil de 20 messages",
        started_by=owner,
    )  # fmt: skip
    Message.objects.bulk_create([Message(conversation=thread, author=owner, body="Bonjour " * 20) for _ in range(20)])
    analyze()
    first_observation = Observation.objects.order_by("pk").first()
    deep = Document.objects.order_by("-care_date", "-pk")[300 * 25]  # the edge of the 300th page
    as_clinician, as_patient = signed_in_client(clinician), signed_in_client(owner)
    rows = [
        (
            "clinician: patient list, page 1 of 2,000 patients",
            lambda: as_clinician.get(reverse("careteams:patient_list")),
        ),
        ("clinician: patient list, page 40", lambda: as_clinician.get(reverse("careteams:patient_list"), {"page": 40})),
        ("clinician: team inbox, 2,000 conversations", lambda: as_clinician.get(reverse("messaging:team_inbox"))),
        (
            "clinician: team inbox, unassigned & open",
            lambda: as_clinician.get(reverse("messaging:team_inbox"), {"assigned": "none", "status": "open"}),
        ),
        ("patient: inbox, 300 conversations", lambda: as_patient.get(reverse("messaging:inbox"))),
        (
            "patient: a conversation of 20 messages",
            lambda: as_patient.get(reverse("messaging:conversation", args=[thread.pk])),
        ),
        ("patient: dashboard", lambda: as_patient.get(reverse("patient_home"))),
        ("patient: documents, page 1 of 10,000", lambda: as_patient.get(reverse("records:documents"))),
        (
            "patient: documents, 300 pages older",
            lambda: as_patient.get(reverse("records:documents"), {"older": deep.pk}),
        ),
        ("patient: lab results, page 1 of 2,000 reports", lambda: as_patient.get(reverse("records:results"))),
        (
            "patient: one test's history (2,000 values)",
            lambda: as_patient.get(reverse("records:observation_history", args=[first_observation.pk])),
        ),
        (
            "clinician: the patient's record page",
            lambda: as_clinician.get(reverse("careteams:patient_detail", args=[first_observation.patient_id])),
        ),
    ]
    with override_settings(ROOT_URLCONF="benchmarks.urls"):
        from benchmarks.urls import floor

        bare = RequestFactory().get("/bench/floor/")
        floor_a = lambda: floor(bare)  # noqa: E731 - one query, tiny template, no middleware
        floor_b = check_ok(lambda: as_patient.get("/bench/floor/"))  # the same view, signed in, every middleware
        print(f"\n{load_average()} (before)")
        signed_in = against_floor(floor_b, floor_a)
        print(
            f"floor (a) {signed_in['floor_cpu_ms']:.2f} ms CPU; floor (b), signed in: {signed_in['cpu_ms']:.2f} ms, "
            f"{signed_in['ratio']:.2f}x floor (a) (goal <= 2x); {measure(floor_b)['queries']} queries"
        )
        # Floor (a) above is the bare view, called without any request handling. The
        # outside run's floor (a) went through a server; the nearest here is the same
        # client request with no middleware at all, which separates what the request
        # handling costs from what the middleware (session, user, second factor) costs.
        # (A test client loads its middleware on its first request and keeps it.)
        bare_client = Client()
        with override_settings(MIDDLEWARE=[]):
            floor_a_handled = check_ok(lambda: bare_client.get("/bench/floor/"))
            floor_a_handled()
        handled = against_floor(floor_a_handled, floor_a)
        against_handled = against_floor(floor_b, floor_a_handled)
        print(
            f"floor (a'), the request handled with no middleware: {handled['cpu_ms']:.2f} ms CPU "
            f"({handled['ratio']:.2f}x floor (a)); floor (b) is {against_handled['ratio']:.2f}x floor (a')"
        )
        report(
            "Pages", [(name, {**measure(check_ok(fn)), **against_floor(check_ok(fn), floor_b)}) for name, fn in rows]
        )
        print(f"{load_average()} (after); ratio = CPU per request (app + database) / floor (b), goal <= 2x")
