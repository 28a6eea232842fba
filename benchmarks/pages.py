"""Lists stay fast as data grows: a clinician with 2,000 patients and 2,000
conversations in the team inbox, a patient with 300 conversations."""

import datetime
import os

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from benchmarks import server
from benchmarks.harness import analyze, check_ok, load_average, measure, python_calls, signed_in_client
from messaging.models import Conversation, Message
from portal.accounts.models import Patient, User, folded_name
from portal.careteams.models import CareLink, CareTeam, Membership
from portal.support.views import SEARCH_SESSION_KEY as SUPPORT_SEARCH_SESSION_KEY
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
                first_folded=folded_name(f"Prénom{i}"),  # as save() would: bulk_create does not call it
                last_folded=folded_name(f"Nom{i:05d}"),
                birth_date="1980-01-01",
                user=owner if i == 0 else None,
            )
            for i in range(patients)
        ]
    )
    CareLink.objects.bulk_create([CareLink(patient=p, team=team) for p in records])
    conversations = Conversation.objects.bulk_create(
        [
            # The bench patient's 300 conversations, then one with each other patient.
            Conversation(
                patient=records[0] if i < 300 else records[i], team=team, subject=f"Sujet {i}", started_by=owner
            )
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


def floors(client, site, bare):
    """Floor (a) and floor (b) through the servers, printed with the queries of floor (b);
    returns floor (b), what the pages are compared with."""
    with override_settings(ROOT_URLCONF="benchmarks.urls"):
        floor_queries = measure(check_ok(lambda: client.get("/bench/floor/")), repeat=1, warmup=1)["queries"]
        floor_calls = python_calls(check_ok(lambda: client.get("/bench/floor/")))
    floor_a = server.Target(bare, "/bench/floor/")
    floor_b = server.Target(site, "/bench/floor/", server.cookie_of(client))
    b_ms, a_ms, b_ratio = server.against(floor_b, floor_a)
    print(
        f"gunicorn, 2 sync workers, DEBUG=0: floor (a), no middleware: {a_ms:.2f} ms CPU (app + database); "
        f"floor (b), the same view signed in: {b_ms:.2f} ms, {b_ratio:.2f}x floor (a) (goal <= 2x), "
        f"{floor_queries} queries (goal <= 5), {floor_calls:,} Python calls in-process"
    )
    return floor_b


def run_floors():
    """Only the two floors (quick): what signing in costs every request."""
    owner = User.objects.create_user("bench.patient@example.org", "bench-password-123", role="patient")
    Patient.objects.create(first_name="Prénom", last_name="Nom", birth_date="1980-01-01", user=owner)
    print(f"\n{load_average()} (before)")
    with server.servers() as (site, bare):
        floors(signed_in_client(owner), site, bare)
    print(f"{load_average()} (after)")


def seed_accounts(count=300):
    """Patients' logins whose names start like the records' ("Nom0..."): what the support
    console's search finds besides the records without a login."""
    User.objects.bulk_create(
        [
            User(email=f"bench.account{i}@example.org", first_name=f"Prénom{i}", last_name=f"Nom{i:05d}",
                 first_folded=folded_name(f"Prénom{i}"), last_folded=folded_name(f"Nom{i:05d}"), role="patient",
                 password=UNUSABLE_PASSWORD_PREFIX)
            for i in range(count)
        ]
    )  # fmt: skip


def seed_pages():
    """The bench's data, then the patient's signed-in test client (floor (b)'s) and the
    pages as (what, signed-in test client, URL) rows."""
    clinician, owner = seed()
    thread = Conversation.objects.create(
        patient=Patient.objects.get(user=owner), team=CareTeam.objects.get(), subject="Fil de 20 messages",
        started_by=owner,
    )  # fmt: skip
    Message.objects.bulk_create([Message(conversation=thread, author=owner, body="Bonjour " * 20) for _ in range(20)])
    seed_accounts()
    analyze()
    first_observation = Observation.objects.order_by("pk").first()
    deep = Document.objects.order_by("-care_date", "-pk")[300 * 25]  # the edge of the 300th page
    as_clinician, as_patient = signed_in_client(clinician), signed_in_client(owner)
    as_support = signed_in_client(
        User.objects.create_user("bench.support@example.org", "bench-password-123", role="support")
    )
    search = as_support.session
    search[SUPPORT_SEARCH_SESSION_KEY] = "nom0"  # the start of all 2,000 patients' last names
    search.save()
    rows = [
        ("patient: a page with the layout only (help)", as_patient, reverse("help")),
        ("clinician: patient list, page 1 of 2,000 patients", as_clinician, reverse("careteams:patient_list")),
        ("clinician: patient list, page 40", as_clinician, reverse("careteams:patient_list") + "?page=40"),
        ("clinician: team inbox, 2,000 conversations", as_clinician, reverse("messaging:team_inbox")),
        (
            "clinician: team inbox, unassigned & open",
            as_clinician,
            reverse("messaging:team_inbox") + "?assigned=none&status=open",
        ),
        ("patient: inbox, 300 conversations", as_patient, reverse("messaging:inbox")),
        ("patient: a conversation of 20 messages", as_patient, reverse("messaging:conversation", args=[thread.pk])),
        ("patient: dashboard", as_patient, reverse("patient_home")),
        ("patient: documents, page 1 of 10,000", as_patient, reverse("records:documents")),
        ("patient: documents, 300 pages older", as_patient, reverse("records:documents") + f"?older={deep.pk}"),
        ("patient: lab results, page 1 of 2,000 reports", as_patient, reverse("records:results")),
        (
            "patient: one test's history (2,000 values)",
            as_patient,
            reverse("records:observation_history", args=[first_observation.pk]),
        ),
        ("support: account search, 2,000 patients match", as_support, reverse("support:home")),
        *(
            (
                f"clinician: the patient's record, {what}",
                as_clinician,
                reverse(name, args=[first_observation.patient_id]),
            )
            for what, name in (
                ("summary", "careteams:patient_detail"),
                ("documents", "careteams:patient_documents"),
                ("lab results", "careteams:patient_results"),
            )
        ),
    ]
    # PAGES=inbox,documents measures only the rows whose name holds one of those words.
    wanted = [word for word in os.environ.get("PAGES", "").split(",") if word]
    return as_patient, [row for row in rows if not wanted or any(word in row[0] for word in wanted)]


def run():
    as_patient, rows = seed_pages()
    with override_settings(ROOT_URLCONF="benchmarks.urls"):
        # Queries and Python calls, counted in this process (the same code the servers run).
        queries = {name: measure(check_ok(lambda c=c, u=url: c.get(u)), repeat=1, warmup=1)["queries"]
                   for name, c, url in rows}  # fmt: skip
        calls = {name: python_calls(check_ok(lambda c=c, u=url: c.get(u))) for name, c, url in rows}
    print(f"\n{load_average()} (before)")
    with server.servers() as (site, bare):
        floor_b = floors(as_patient, site, bare)
        print(f"\n## Pages  ({connection.vendor}, {os.cpu_count()} cores)")
        print(
            f"{'what':<52} {'queries':>7} {'calls':>7} {'CPU ms':>7} {'of it DB':>8} {'x floor (b)':>11}"
            f" {'p50 ms':>7} {'p99 ms':>7}"
        )
        for name, client, url in rows:
            page = server.Target(site, url, server.cookie_of(client))
            page_ms, _, ratio = server.against(page, floor_b)
            p50, p99 = server.percentile_under_load(page)
            print(
                f"{name:<52} {queries[name]:>7} {calls[name]:>7,} {page_ms:>7.2f} {page.database_ms:>8.2f}"
                f" {ratio:>11.2f} {p50:>7.1f} {p99:>7.1f}"
            )
    print(
        f"{load_average()} (after). CPU = web workers + database backends per request, from /proc; "
        "x floor (b) goal <= 2; calls = Python function calls of one request in-process (cProfile), which the load "
        "does not move; p50/p99 wall time at 8 connections at once, goal p99 < 100 ms on a quiet machine"
    )
