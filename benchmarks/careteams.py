"""The care team's patient search on 10,000 patients of one team (among 20,000 in
Carnet): by name prefix, INS, birth date, unread messages (median of several requests)."""

import datetime
import random

from django.urls import reverse

from benchmarks.harness import analyze, check_ok, measure, report, signed_in_client
from benchmarks.support import FIRST, LAST
from messaging.models import Conversation, Message
from portal.accounts.models import Patient, User, folded_name, nir_key
from portal.careteams.models import CareLink, CareTeam, Membership
from portal.careteams.views import SEARCH_SESSION_KEY
from records.models import LabReport


def seed(patients=20_000, of_team=10_000):
    rng = random.Random(16)  # noqa: S311 (synthetic data)
    team = CareTeam.objects.create(name="Cabinet de banc d'essai", kind=CareTeam.Kind.PRACTICE)
    other = CareTeam.objects.create(name="Autre cabinet", kind=CareTeam.Kind.PRACTICE)
    clinician = User.objects.create_user("bench.care@example.org", "bench-password-123", role="clinician")
    owner = User.objects.create_user("bench.owner@example.org", "bench-password-123", role="patient")
    Membership.objects.create(team=team, user=clinician)
    rows = []
    for i in range(patients):
        birth = datetime.date(1940, 1, 1) + datetime.timedelta(days=rng.randrange(30_000))
        body = f"{1 + i % 2}{birth.year % 100:02d}{birth.month:02d}75{i:06d}"
        row = Patient(first_name=rng.choice(FIRST), last_name=rng.choice(LAST), birth_date=birth,
                      ins=body + nir_key(body), user=owner if i == 0 else None)  # fmt: skip
        row.first_folded, row.last_folded = folded_name(row.first_name), folded_name(row.last_name)
        rows.append(row)
    records = Patient.objects.bulk_create(rows, batch_size=5000)
    CareLink.objects.bulk_create(
        [CareLink(patient=p, team=team if i < of_team else other) for i, p in enumerate(records)], batch_size=5000
    )
    conversations = Conversation.objects.bulk_create(
        [Conversation(patient=records[i * 50], team=team, subject="Sujet", started_by=owner) for i in range(200)]
    )
    Message.objects.bulk_create([Message(conversation=c, author=owner, body="Bonjour") for c in conversations])
    # Two lab reports each from another team (a lab), for the "results not seen" filter.
    LabReport.objects.bulk_create(
        [LabReport(patient=p, title="Bilan", collected_on="2026-01-01", author=clinician, team=other)
         for p in records[:of_team] for _ in range(2)],
        batch_size=5000,
    )  # fmt: skip
    return clinician, records


def run():
    clinician, records = seed()
    analyze()
    client = signed_in_client(clinician)
    page = check_ok(lambda: client.get(reverse("careteams:patient_list")))

    def search(**fields):  # the search lives in the session, as after the clinician's POST
        session = client.session
        session[SEARCH_SESSION_KEY] = fields
        session.save()
        return page

    target = records[4217]
    searches = [
        ("no search, page 1 of 400", {}),
        ("name 'dur' (thousands)", {"name": "dur"}),
        ("name 'camille mar'", {"name": "camille mar"}),
        ("INS", {"ins": target.ins}),
        ("birth date", {"birth_date": target.birth_date.isoformat()}),
        ("unread messages", {"unread": "on"}),
        ("results the team has not seen", {"new_results": "on"}),
    ]
    rows = [(f"clinician: 10,000 patients, {name}", measure(search(**fields))) for name, fields in searches]
    # Deep in the list, from a cursor (keyset): should cost what the first page costs.
    search()
    in_order = Patient.objects.filter(care_links__team__memberships__user=clinician).order_by(
        "last_name", "first_name", "pk"
    )
    for position in (5_000, 9_990):
        cursor = in_order.values_list("pk", flat=True)[position]
        deep = check_ok(lambda cursor=cursor: client.get(reverse("careteams:patient_list"), {"older": cursor}))
        rows.append((f"clinician: 10,000 patients, no search, after the {position:,}th by name", measure(deep)))
    report("Care team patient search, 10,000 patients of the team", rows)
