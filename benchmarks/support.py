"""The support console's account search against Django's admin changelist, on
100,000 accounts, same data, same searches, same run (median of several requests)."""

import random

from django.contrib.auth.hashers import make_password
from django.db import connection
from django.urls import reverse

from benchmarks.harness import analyze, check_ok, measure, report, signed_in_client
from portal.accounts.models import Patient, User, folded_name
from portal.support.services import search_accounts
from portal.support.views import SEARCH_SESSION_KEY

FIRST = ["Camille", "Lucas", "Léa", "Hugo", "Chloé", "Louis", "Emma", "Jules", "Manon", "Gabriel", "Inès", "Arthur"]
LAST = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
]


def seed(accounts=100_000):
    rng = random.Random(7)  # noqa: S311 (synthetic data)
    unusable = make_password(None)
    users = [
        User(email=f"compte{i:06d}@example.org", first_name=rng.choice(FIRST),
             last_name=rng.choice(LAST) if i % 1000 else f"Rare{i}",
             role=User.Role.PATIENT if i % 20 else User.Role.CLINICIAN, password=unusable)
        for i in range(accounts)
    ]  # fmt: skip
    patients = [
        Patient(user=user, first_name=user.first_name, last_name=user.last_name, birth_date="1980-01-01",
                ins=f"{1800000000000 + i:013d}")
        for i, user in enumerate(users) if user.role == User.Role.PATIENT
    ]  # fmt: skip
    for row in (*users, *patients):  # bulk_create does not call save(), which folds names
        row.first_folded, row.last_folded = folded_name(row.first_name), folded_name(row.last_name)
    User.objects.bulk_create(users, batch_size=5000)
    Patient.objects.bulk_create(patients, batch_size=5000)
    agent = User.objects.create_user("bench.agent@example.org", "bench-password-123", role=User.Role.SUPPORT)
    root = User.objects.create_superuser("bench.root@example.org", "bench-password-123")
    return agent, root


def plan(query):
    """The first line of the database's plan for the console's search (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return "-"
    sql, params = search_accounts(query)[:25].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        lines = [row[0] for row in cursor.fetchall()]
    return next((line.strip() for line in lines if "Index" in line), lines[0].strip())


def run():
    agent, root = seed()
    analyze()
    console, admin = signed_in_client(agent), signed_in_client(root)
    # Thousands of matches, hundreds, one by email, one by identifier.
    searches = ["durand", "camille mar", "compte04217", Patient.objects.order_by("pk")[4217].ins]

    def search(query):  # the search lives in the session, as after the agent's POST
        session = console.session
        session[SEARCH_SESSION_KEY] = query
        session.save()

    console_page = check_ok(lambda **params: console.get(reverse("support:home"), params))
    admin_page = check_ok(lambda **params: admin.get(reverse("admin:accounts_user_changelist"), params))
    rows, plans = [], []
    for query in searches:
        search(query)
        rows.append((f"console: search '{query}'", measure(console_page)))
        rows.append((f"admin changelist: search '{query}'", measure(lambda q=query: admin_page(q=q))))
        plans.append((query, plan(query)))
    search("")
    rows.append(("console: no search, page 2,000 of 4,000", measure(lambda: console_page(page=2000))))
    rows.append(("admin changelist: no search, page 1,000 of 1,000", measure(lambda: admin_page(p=1000))))
    report("Support console search vs Django admin, 100,000 accounts", rows)
    for (name, console_figures), (_, admin_figures) in zip(rows[0:8:2], rows[1:8:2], strict=True):
        print(f"{name:<58} {admin_figures['median_ms'] / console_figures['median_ms']:>6.1f}× faster than the admin")
    for query, line in plans:
        print(f"plan for '{query}': {line}")
