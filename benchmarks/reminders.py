"""The reminder scan over 100,000 patients (with logins) and 1,000,000 appointments,
with a year of history around "now", a representative for one record in ten: 300,000 lab results (a third never opened),
200,000 prescriptions (half renewable), 200,000 vaccinations. Data made by set-based
SQL (generate_series) in the bench's throwaway PostgreSQL database. Prints the time of
a first scan (writing the due reminders and sending the due emails), of the next one
(nothing new: the steady state every 5 minutes), the EXPLAIN of each kind of query
the scan makes, and the load average.

REMINDERS_PATIENTS sets the size (appointments are 10 per patient); develop with 5000."""

import datetime
import logging
import os
import re
import time
from zoneinfo import ZoneInfo

import time_machine
from django.apps import apps
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from benchmarks.harness import analyze, load_average
from portal.accounts.models import User
from portal.careteams.models import CareTeam

# 18:30 in Paris: the "tomorrow" appointment reminders are due too.
NOW = datetime.datetime(2026, 12, 1, 18, 30, tzinfo=ZoneInfo("Europe/Paris"))


def seed(patients: int) -> dict:
    from portal.accounts.models import NoticePreference

    offered = NoticePreference.offered()
    team = CareTeam.objects.create(name="Cabinet de banc d'essai", kind=CareTeam.Kind.PRACTICE)
    clinician = User.objects.create_user("bench.remind@example.org", "bench-password-123", role="clinician")
    now, counts = NOW.astimezone(datetime.UTC), {"patients": patients}
    params = {"n": patients, "team": team.pk, "author": clinician.pk, "now": now, "today": NOW.date()}
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO accounts_user (password, is_superuser, email, first_name, last_name, role, is_active,
                   is_staff, date_joined, first_folded, last_folded)
               SELECT '!', false, 'patient' || g || '@bench.example.org', 'Camille', 'Durand', 'patient', true,
                   false, %(now)s - interval '2 years', 'camille', 'durand'
               FROM generate_series(1, %(n)s) g""",
            params,
        )
        # Birth dates spread evenly over a century: about 3 patients turn any given age each day.
        cursor.execute(
            """INSERT INTO accounts_patient (user_id, first_name, last_name, birth_date, sex, ins_oid, birth_name,
                   first_names, used_name, birth_place, created_at, first_folded, last_folded)
               SELECT u.id, 'Camille', 'Durand', %(today)s - (random() * 36500)::int, 'female', '', '', '', '', '',
                   %(now)s, 'camille', 'durand'
               FROM accounts_user u WHERE u.email LIKE '%%@bench.example.org'""",
            params,
        )
        cursor.execute("SELECT min(id), max(id) FROM accounts_patient")
        params["first"], last = cursor.fetchone()
        params["span"] = last - params["first"] + 1  # a random patient: first + floor(random() * span)
        if apps.is_installed("agenda"):
            # 10 per patient over a year before and a year after now; 5% cancelled.
            cursor.execute(
                """INSERT INTO agenda_appointment (patient_id, team_id, starts_at, duration_minutes, ends_at, mode,
                       place, video_url, with_whom, instructions, status, sequence, created_by_id, created_at,
                       updated_at, cancelled_at, cancel_reason)
                    SELECT %(first)s + floor(random() * %(span)s)::int, %(team)s, s, 30, s + interval '30 minutes',
                        'in_person', '', '', 'Dr Martin', '',
                        CASE WHEN g %% 20 = 0 THEN 'cancelled' ELSE 'scheduled' END, 0, %(author)s, %(now)s,
                        %(now)s, CASE WHEN g %% 20 = 0 THEN %(now)s END, ''
                    FROM generate_series(1, %(n)s * 10) g,
                         LATERAL (SELECT %(now)s + (random() * 730 - 365) * interval '1 day' + g * interval '0 s')
                         t(s)""",
                params,
            )
            counts["appointments"] = patients * 10
        cursor.execute(
            """INSERT INTO records_prescription (patient_id, medication, dosage, frequency, route, start_date,
                   end_date, renewable, prescriber_id, team_id, created_at, stop_reason, source_id, confidential)
                SELECT %(first)s + floor(random() * %(span)s)::int, 'Médicament', '1', '1/j', 'oral', e - 90, e,
                   g %% 2 = 0, %(author)s, %(team)s,
                   %(now)s, '', '', g %% 50 = 0
                FROM generate_series(1, %(n)s * 2) g,
                     LATERAL (SELECT %(today)s + (random() * 730 - 365)::int + g * 0) t(e)""",
            params,
        )
        counts["prescriptions"] = patients * 2
        cursor.execute(
            """INSERT INTO records_labreport (patient_id, title, collected_on, author_id, team_id, created_at,
                   source_id, confidential)
                SELECT %(first)s + floor(random() * %(span)s)::int, 'Bilan', (c)::date, %(author)s, %(team)s, c, '',
                    g %% 50 = 0
                FROM generate_series(1, %(n)s * 3) g,
                     LATERAL (SELECT %(now)s - random() * interval '365 days' + g * interval '0 s') t(c)""",
            params,
        )
        cursor.execute(
            """INSERT INTO records_news (patient_id, kind, lab_report_id, created_at, seen_at)
               SELECT patient_id, 'result', id, created_at,
                   CASE WHEN id %% 3 = 0 THEN NULL ELSE created_at + interval '1 day' END
               FROM records_labreport""",
            params,
        )
        counts["lab results"] = patients * 3
        cursor.execute(
            """INSERT INTO records_vaccination (patient_id, author_id, created_at, vaccine, date, lot)
                SELECT %(first)s + floor(random() * %(span)s)::int, %(author)s, %(now)s,
                    CASE WHEN g %% 2 = 0 THEN 'Revaxis' ELSE 'Grippe' END,
                    %(today)s - (random() * 3650)::int, ''
                FROM generate_series(1, %(n)s * 2) g""",
            params,
        )
        counts["vaccinations"] = patients * 2
        # One record in ten has a representative (another bench login): parents for half of
        # them, helpers given prescriptions and results for the other half.
        cursor.execute(
            """INSERT INTO accounts_representation (patient_id, representative_id, kind, documents, results,
                   prescriptions, messages, starts_at, proof, reason, created_at, end_reason)
               SELECT p.id, r.user_id, CASE WHEN p.id %% 20 = 0 THEN 'parent' ELSE 'helper' END, false, true, true,
                   false, %(now)s - interval '1 year', '', '', %(now)s, ''
               FROM accounts_patient p JOIN accounts_patient r ON r.id = p.id + 1
               WHERE p.id %% 10 = 0""",
            params,
        )
        counts["representations"] = patients // 10
        # 60 days of reminders already sent (what the table holds once retention runs): the
        # scan must not read them.
        cursor.execute(
            """INSERT INTO reminders_reminder (key, kind, channel, user_id, patient_id, subject_id, code, moment,
                   due_at, useful_until, status, created_at, sent_at, attempts)
               SELECT 'history:' || g, 'unread_results', CASE WHEN g %% 2 = 0 THEN 'email' ELSE 'in_app' END,
                   p.user_id, p.id, g, '', m, m, m + interval '7 days', 'sent', m, m, 1
               FROM generate_series(1, %(n)s * 6) g
               JOIN accounts_patient p ON p.id = %(first)s + g %% %(span)s,
               LATERAL (SELECT %(now)s - interval '60 days' + (g %% 5000) * interval '1 day' / 84) t(m)""",
            params,
        )
        counts["reminders already sent"] = patients * 6
        # One patient in ten saved the preferences form (a row per kind and channel offered),
        # turning two kinds of reminder emails off.
        cursor.execute(
            """INSERT INTO accounts_noticepreference (user_id, kind, channel, enabled)
               SELECT p.user_id, o.kind, o.channel, NOT (o.channel = 'email' AND o.kind IN ('renewals', 'vaccinations'))
               FROM accounts_patient p, unnest(%(kinds)s::text[], %(channels)s::text[]) o(kind, channel)
               WHERE p.id %% 10 = 0""",
            {"kinds": [kind for kind, _channel in offered], "channels": [channel for _kind, channel in offered]},
        )
    return counts


def _shape(sql: str) -> str:
    """A query with its literals blanked, to EXPLAIN each kind once."""
    return re.sub(r"'[^']*'|\b\d+\b", "?", re.sub(r"\bIN \([^)]*\)", "IN (?)", sql))


def explain(queries) -> None:
    shown = set()
    for query in queries:
        sql = query["sql"]
        if not sql.lstrip().upper().startswith("SELECT") or _shape(sql) in shown:
            continue
        shown.add(_shape(sql))
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
            plan = "\n    ".join(row[0] for row in cursor.fetchall())
        print(f"\n  {sql[:300]}{'…' if len(sql) > 300 else ''}\n    {plan}")


def run():
    from reminders import services
    from reminders.models import Reminder

    if connection.vendor != "postgresql":
        print("\n## Reminder scan: needs PostgreSQL (set DATABASE_URL)")
        return
    patients = int(os.environ.get("REMINDERS_PATIENTS", "100000"))
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # a line per email otherwise
    start = time.perf_counter()
    counts = seed(patients)
    analyze()
    print(f"\n## Reminder scan  (postgresql, {os.cpu_count()} cores)")
    print("data: " + ", ".join(f"{count:,} {what}" for what, count in counts.items()))
    print(f"seeded in {time.perf_counter() - start:.1f} s; {load_average()}")

    # The scan hands each due email to Celery (a broker push); here they are counted, and
    # then delivered apart, one by one as the workers would, and timed apart.
    handed = []
    services.enqueue_reminders, enqueue = (lambda ids: handed.extend(ids) or len(ids)), services.enqueue_reminders
    try:
        with CaptureQueriesContext(connection) as first_queries:
            start = time.perf_counter()
            services.scan_reminders(now=NOW)
            first = time.perf_counter() - start
        written = {
            kind: Reminder.objects.filter(kind=kind).exclude(key__startswith="history:").count()
            for kind in Reminder.Kind.values
        }
        print(f"first scan: {first:.2f} s, {len(first_queries)} queries; reminders written (email + in-app): {written}")
        analyze()  # as autovacuum would after the reminders table grew from nothing
        with CaptureQueriesContext(connection) as next_queries:
            start = time.perf_counter()
            services.scan_reminders(now=NOW + datetime.timedelta(minutes=5))
            again = time.perf_counter() - start
        print(f"next scan, 5 minutes later (nothing new): {again:.2f} s, {len(next_queries)} queries")
    finally:
        services.enqueue_reminders = enqueue
    mail.outbox = []
    with time_machine.travel(NOW + datetime.timedelta(minutes=6), tick=True):  # the deliveries read the clock
        ids = sorted(set(handed))
        start = time.perf_counter()
        for reminder_id in ids:
            services.deliver_reminder(reminder_id=reminder_id)
        sending = time.perf_counter() - start
    print(f"deliveries (the workers' part, not the scan's): {len(mail.outbox)} emails from {len(ids)} handed over "
          f"in {sending:.2f} s ({sending * 1000 / max(1, len(ids)):.1f} ms each)")  # fmt: skip
    print(f"{load_average()}")
    verdict = "OK" if max(first, again) < 30 else "TOO SLOW"
    print(f"target: a scan under 30 s -> {verdict}")
    print("\nEXPLAIN of each kind of query of the scan:")
    explain(first_queries.captured_queries)
