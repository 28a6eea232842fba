"""Lists stay fast as data grows: a clinician with 2,000 patients and 2,000
conversations in the team inbox, a patient with 300 conversations."""

from django.test import Client
from django.urls import reverse

from benchmarks.harness import analyze, measure, report
from messaging.models import Conversation, Message
from portal.accounts.models import Patient, User
from portal.careteams.models import CareLink, CareTeam, Membership


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
    return clinician, owner


def run():
    clinician, owner = seed()
    analyze()
    as_clinician, as_patient = Client(), Client()
    as_clinician.force_login(clinician)
    as_patient.force_login(owner)
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
        ("patient: dashboard", lambda: as_patient.get(reverse("patient_home"))),
    ]
    report("Pages", [(name, measure(fn)) for name, fn in rows])
