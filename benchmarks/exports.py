"""Exports for a synthetic patient with 2,000 lab results (200 reports × 10
values over ten years), 500 documents, 50 conversations and a medical profile
(allergies, conditions, treatments, vaccinations, measurements): seconds and peak
memory per export, each in a forked child process, and the floor: WeasyPrint
rendering the same generated HTML in a fresh Python with no Django around it,
with the ratio export / floor. Also the cost of each ``pdf_variant``.

The floors render with the garbage collector paused, as ``records.pdf.write_pdf``
does; the lab results floor with the default collector shows what that pause saves.

Goals (issue #6): health summary under 1 s; lab results PDF within 1.3× its floor.
"""

import datetime
import io
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from benchmarks.harness import analyze
from messaging.models import Conversation, Message
from portal.accounts.models import Patient, User
from portal.careteams.models import CareLink, CareTeam, Membership
from records import export_builders, files, pdf
from records.models import (
    Allergy,
    Condition,
    Document,
    LabReport,
    Measurement,
    Observation,
    Prescription,
    Vaccination,
)


def _minimal_pdf() -> bytes:
    import pypdfium2

    document = pypdfium2.PdfDocument.new()
    document.new_page(595, 842)
    out = io.BytesIO()
    document.save(out)
    document.close()
    return out.getvalue()


# French lab tests: LOINC code, name, unit, lower and upper limits (None: open), typical value.
LAB_TESTS = [
    ("2345-7", "Glycémie à jeun", "g/L", "0.70", "1.10", "0.95"),
    ("4548-4", "Hémoglobine glyquée (HbA1c)", "%", "4.0", "6.0", "5.6"),
    ("718-7", "Hémoglobine", "g/dL", "12", "16", "13.5"),
    ("6690-2", "Leucocytes", "G/L", "4.0", "10.0", "6.5"),
    ("777-3", "Plaquettes", "G/L", "150", "400", "250"),
    ("14682-9", "Créatinine", "µmol/L", "45", "90", "72"),
    ("62238-1", "Débit de filtration glomérulaire (CKD-EPI)", "mL/min/1,73 m²", "60", None, "85"),
    ("2951-2", "Sodium", "mmol/L", "136", "145", "140"),
    ("2823-3", "Potassium", "mmol/L", "3.5", "5.0", "4.2"),
    ("2093-3", "Cholestérol total", "g/L", None, "2.00", "1.95"),
    ("2085-9", "Cholestérol HDL", "g/L", "0.40", None, "0.55"),
    ("13457-7", "Cholestérol LDL (calculé)", "g/L", None, "1.60", "1.30"),
    ("2571-8", "Triglycérides", "g/L", "0.35", "1.50", "1.10"),
    ("1920-8", "ASAT (transaminases)", "UI/L", None, "35", "24"),
    ("1742-6", "ALAT (transaminases)", "UI/L", None, "35", "28"),
    ("2324-2", "Gamma-glutamyl transférase (GGT)", "UI/L", None, "40", "32"),
    ("1988-5", "Protéine C réactive (CRP)", "mg/L", None, "5", "3"),
    ("3016-3", "TSH", "mUI/L", "0.40", "4.00", "2.1"),
    ("2276-4", "Ferritine", "µg/L", "15", "150", "80"),
    ("1989-3", "Vitamine D (25-OH)", "ng/mL", "30", "100", "28"),
]
LAB_TITLES = ["Bilan sanguin de suivi", "Bilan lipidique et glycémique", "Bilan rénal et hépatique", "Bilan annuel"]


def _decimal(text):
    return None if text is None else Decimal(text)


def seed_labs(patient, clinician, team, reports=200, per_report=10):
    """``reports`` × ``per_report`` lab values over ten years, about one in seven out of range."""
    rng = random.Random(6)  # noqa: S311 (synthetic data, reproducible)
    first = datetime.date(2016, 1, 4)
    rows = LabReport.objects.bulk_create(
        [
            LabReport(
                patient=patient,
                title=LAB_TITLES[i % len(LAB_TITLES)],
                collected_on=first + datetime.timedelta(days=i * 3650 // reports),
                author=clinician,
                team=team,
            )
            for i in range(reports)
        ]
    )
    if rows[0].pk is None:  # a backend that does not return keys from bulk_create
        rows = list(LabReport.objects.filter(patient=patient).order_by("collected_on", "pk"))
    observations = []
    for report in rows:
        for loinc, name, unit, low, high, typical in rng.sample(LAB_TESTS, per_report):
            value = Decimal(typical) * Decimal(rng.gauss(1, 0.12)).quantize(Decimal("0.001"))
            observations.append(
                Observation(
                    report=report, patient=patient, loinc=loinc, name=name, unit=unit,
                    value=value.quantize(Decimal("0.01")), low=_decimal(low), high=_decimal(high),
                )
            )  # fmt: skip
    Observation.objects.bulk_create(observations)
    return len(observations)


def seed_profile(patient, clinician, team):
    """A few rows in each section of the health summary's medical profile."""
    entry = {"patient": patient, "author": clinician, "team": team}
    Allergy.objects.bulk_create(
        [
            Allergy(substance="Pénicilline", reaction="Urticaire généralisée", severity="severe", **entry),
            Allergy(substance="Pollens de graminées", reaction="Rhinite", severity="mild", **entry),
            Allergy(substance="Iode (produits de contraste)", severity="moderate", **entry),
        ]
    )
    Condition.objects.bulk_create(
        [
            Condition(name="Diabète de type 2", since=datetime.date(2015, 6, 1), notes="Sous metformine", **entry),
            Condition(name="Hypertension artérielle", since=datetime.date(2012, 2, 1), **entry),
            Condition(name="Hypothyroïdie", since=datetime.date(2018, 9, 1), **entry),
            Condition(name="Appendicectomie", since=datetime.date(1980, 5, 1), notes="Sans complication", **entry),
        ]
    )
    today = timezone.localdate()
    treatments = [
        ("Metformine 1000 mg", "1 comprimé", "matin et soir"),
        ("Ramipril 5 mg", "1 comprimé", "le matin"),
        ("Lévothyroxine 75 µg", "1 comprimé", "le matin à jeun"),
        ("Atorvastatine 20 mg", "1 comprimé", "le soir"),
        ("Paracétamol 1 g", "1 comprimé", "si douleur, 3 fois par jour au plus"),
    ]
    Prescription.objects.bulk_create(
        [
            Prescription(
                patient=patient, medication=medication, dosage=dosage, frequency=frequency,
                start_date=today - datetime.timedelta(days=400 - 60 * i), prescriber=clinician, team=team,
                end_date=None if i < 4 else today + datetime.timedelta(days=30), renewable=True,
            )
            for i, (medication, dosage, frequency) in enumerate(treatments)
        ]
        + [  # finished: not in the summary
            Prescription(
                patient=patient, medication="Amoxicilline 1 g", dosage="1 comprimé", frequency="3 fois par jour",
                start_date=today - datetime.timedelta(days=90), end_date=today - datetime.timedelta(days=83),
                prescriber=clinician, team=team,
            )
        ]
    )  # fmt: skip
    Vaccination.objects.bulk_create(
        [
            Vaccination(vaccine=vaccine, date=datetime.date(year, month, 15), lot=f"LOT{year}{month:02}", **entry)
            for vaccine, year, month in [
                ("DTP (rappel)", 2022, 3),
                ("Grippe saisonnière", 2023, 10),
                ("Grippe saisonnière", 2024, 10),
                ("Grippe saisonnière", 2025, 10),
                ("COVID-19", 2024, 11),
                ("Pneumocoque", 2023, 4),
            ]
        ]
    )
    measurements = []
    for month in range(24):
        day = today - datetime.timedelta(days=30 * month)
        measurements += [
            Measurement(kind="weight", value=Decimal("71.5") + month % 3, measured_on=day, **entry),
            Measurement(kind="blood_pressure", value=128 + month % 7, value2=82, measured_on=day, **entry),
            Measurement(kind="glucose", value=Decimal("1.05"), measured_on=day, **entry),
        ]
    measurements.append(Measurement(kind="height", value=165, measured_on=datetime.date(2020, 1, 1), **entry))
    Measurement.objects.bulk_create(measurements)


def seed(documents=500, conversations=50, messages_each=12):
    team = CareTeam.objects.create(name="Centre hospitalier du banc d'essai", kind=CareTeam.Kind.PRACTICE)
    clinician = User.objects.create_user("bench.export.clinician@example.org", "bench-password-123", role="clinician")
    Membership.objects.create(team=team, user=clinician)
    user = User.objects.create_user(
        "bench.export@example.org", "bench-password-123", role="patient", first_name="Hélène", last_name="Lefèvre"
    )
    patient = Patient.objects.create(
        user=user, first_name="Hélène", last_name="Lefèvre", birth_date=datetime.date(1962, 3, 4)
    )
    CareLink.objects.create(patient=patient, team=team)
    seed_labs(patient, clinician, team)
    seed_profile(patient, clinician, team)
    data = _minimal_pdf()
    rows = []
    for i in range(documents):
        name, sha256, key_id = files.store(data)
        rows.append(
            Document(
                patient=patient,
                title=f"Compte rendu n°{i} — épaule, genou, cœur",
                category="report",
                care_date=datetime.date(2020, 1, 1) + datetime.timedelta(days=i * 3),
                author=clinician,
                author_team=team,
                content_type="application/pdf",
                size=len(data),
                sha256=sha256,
                key_id=key_id,
                file_name=name,
                status="ready",
            )
        )
    Document.objects.bulk_create(rows)
    threads = Conversation.objects.bulk_create(
        [
            Conversation(patient=patient, team=team, subject=f"Question n°{i}", started_by=user)
            for i in range(conversations)
        ]
    )
    body = "Bonjour, j'ai une question à propos de mon traitement et des résultats d'analyse. " * 3
    Message.objects.bulk_create(
        [
            Message(
                conversation=c,
                author=user if n % 2 == 0 else clinician,
                author_team=None if n % 2 == 0 else team,
                body=body,
                created_at=timezone.now() - datetime.timedelta(hours=messages_each - n),
            )
            for c in threads
            for n in range(messages_each)
        ]
    )
    return user, patient, threads[0]


def _rss_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _child(fn, queue):
    # Reset the high-water mark so it counts this export, not the parent's seeding.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    baseline = _rss_kib("VmRSS")
    try:
        start = time.perf_counter()
        size = len(fn())
        seconds = time.perf_counter() - start
    except Exception as error:  # report it rather than leave the parent waiting
        queue.put({"error": repr(error)})
        raise
    peak = _rss_kib("VmHWM")
    queue.put({"seconds": seconds, "peak_mib": peak / 1024, "delta_mib": (peak - baseline) / 1024, "bytes": size})
    connection.close()


def in_child(fn, repeat):
    """Run ``fn`` in ``repeat`` forked children; median seconds, max peak memory."""
    context = multiprocessing.get_context("fork")
    results = []
    for _ in range(repeat):
        queue = context.Queue()
        # Never share a database connection across fork: each process opens its own.
        connection.close()
        process = context.Process(target=_child, args=(fn, queue))
        process.start()
        result = queue.get(timeout=900)
        process.join()
        if "error" in result:
            raise RuntimeError(result["error"])
        results.append(result)
    return {
        "seconds": statistics.median(r["seconds"] for r in results),
        "min_seconds": min(r["seconds"] for r in results),
        "peak_mib": max(r["peak_mib"] for r in results),
        "delta_mib": max(r["delta_mib"] for r in results),
        "bytes": results[0]["bytes"],
    }


FLOOR = textwrap.dedent(
    """
    import gc, json, resource, sys, time
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration
    html_path, css_path, base_url, variant, repeat, collector = sys.argv[1:7]
    html = open(html_path, encoding="utf-8").read()
    fonts = FontConfiguration()
    css = CSS(filename=css_path, font_config=fonts)
    variant = None if variant == "none" else variant

    def render():
        if collector == "paused":  # as records.pdf.collector_paused
            gc.disable()
        HTML(string=html, base_url=base_url).write_pdf(stylesheets=[css], font_config=fonts, pdf_variant=variant)
        gc.enable()
        if collector == "paused":
            gc.collect(0)

    render()
    times = []
    for _ in range(int(repeat)):
        start = time.perf_counter()
        render()
        times.append(time.perf_counter() - start)
    times.sort()
    print(json.dumps({"seconds": times[len(times) // 2], "min_seconds": times[0],
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def floor(html: str, variant: str | None, repeat=3, collector="default") -> dict:
    """WeasyPrint alone, in a fresh interpreter: no Django, same HTML, CSS and fonts.
    ``collector="paused"`` renders as ``records.pdf.collector_paused`` does."""
    with tempfile.NamedTemporaryFile("w", suffix=".html", encoding="utf-8", delete=False) as handle:
        handle.write(html)
    try:
        base = pdf._base_dir()
        output = subprocess.run(  # noqa: S603 (our own interpreter and script)
            [sys.executable, "-c", FLOOR, handle.name, str(base / pdf.STYLESHEET), base.as_uri() + "/",
             variant or "none", str(repeat), collector],
            capture_output=True, text=True, check=True, env={k: v for k, v in os.environ.items() if "DJANGO" not in k},
        )  # fmt: skip
    finally:
        os.unlink(handle.name)
    return json.loads(output.stdout.strip().splitlines()[-1])


def row(name, figures):
    print(
        f"{name:<62} {figures['seconds']:>8.3f} {figures['min_seconds']:>8.3f} {figures['peak_mib']:>9.1f}"
        f" {figures.get('delta_mib', float('nan')):>9.1f}"
    )


def run():
    user, patient, conversation = seed()
    analyze()
    pdf.write_pdf("<html lang='fr'><title>warm-up</title><p>x</p></html>")  # stylesheet + fonts, as a warm worker
    labs = Observation.objects.filter(patient=patient).count()
    print(
        f"\n## Exports: {labs} lab results, 500 documents, 50 conversations × 12 messages"
        f"  ({connection.vendor}, {os.cpu_count()} cores)"
    )
    print(f"{'what':<62} {'median s':>8} {'min s':>8} {'peak MiB':>9} {'+MiB':>9}")
    sections = list(export_builders.SECTIONS)
    summary = in_child(lambda: export_builders.build_summary(user=user, patient=patient, sections=sections), repeat=5)
    row("health summary PDF (all sections; latest 25 of 500 documents)", summary)
    row(
        "health summary PDF (identity + care teams)",
        in_child(
            lambda: export_builders.build_summary(user=user, patient=patient, sections=["identity", "care_teams"]), 5
        ),
    )
    lab = in_child(lambda: export_builders.build_lab_results(user=user, patient=patient), repeat=3)
    row(f"lab results PDF (all {labs} values)", lab)
    row(
        "conversation PDF (12 messages)",
        in_child(
            lambda: export_builders.build_conversation(user=user, patient=patient, conversation_id=conversation.pk), 5
        ),
    )
    row("complete archive ZIP (500 documents, 50 conversation PDFs, FHIR)", in_child(
        lambda: export_builders.build_archive(user=user, patient=patient), repeat=1))  # fmt: skip

    summary_html = export_builders.summary_html(user=user, patient=patient, sections=sections)
    lab_html = export_builders.lab_results_html(user=user, patient=patient)
    conversation_html = export_builders.conversation_html(patient=patient, conversation=conversation)
    print("\n## Floor: WeasyPrint alone on the same HTML, fresh interpreter, no Django")
    print(f"{'what':<62} {'median s':>8} {'min s':>8} {'peak MiB':>9}")
    floors = {}
    for variant in (None, "pdf/ua-1", "pdf/a-3b"):
        floors[variant] = floor(summary_html, variant, repeat=7, collector="paused")
        row(f"health summary HTML, pdf_variant={variant}", floors[variant])
    lab_floor = floor(lab_html, pdf.PDF_VARIANT, repeat=3, collector="paused")
    row(f"lab results HTML ({labs} values), {pdf.PDF_VARIANT}, collector paused", lab_floor)
    row(f"lab results HTML ({labs} values), {pdf.PDF_VARIANT}, default collector", floor(lab_html, pdf.PDF_VARIANT, 2))
    row(f"conversation HTML, pdf_variant={pdf.PDF_VARIANT}", floor(conversation_html, pdf.PDF_VARIANT, 5, "paused"))

    # Medians and minimums both: on a shared machine the minimum is the less disturbed figure.
    print(f"\n## Export / floor, pdf_variant={pdf.PDF_VARIANT}  (goals: summary < 1 s; lab results ≤ 1.3× floor)")
    print(f"{'what':<62} {'median':>8} {'min':>8}")
    for name, export, base in [
        ("health summary PDF (all sections)", summary, floors[pdf.PDF_VARIANT]),
        ("lab results PDF (all values)", lab, lab_floor),
    ]:
        median, least = export["seconds"] / base["seconds"], export["min_seconds"] / base["min_seconds"]
        print(f"{name:<62} {median:>7.2f}× {least:>7.2f}×")

    print("\n## Is a long table linear? The documents table alone, WeasyPrint floor, pdf/ua-1")
    for rows in (125, 250, 500):
        export_builders.SUMMARY_DOCUMENTS = rows
        html = export_builders.summary_html(user=user, patient=patient, sections=["documents"])
        row(f"{rows} table rows", floor(html, pdf.PDF_VARIANT, repeat=1))
