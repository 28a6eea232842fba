"""Exports for a synthetic patient with 500 documents and 50 conversations:
seconds and peak memory per export, each in a forked child process, and the
floor: WeasyPrint rendering the same generated HTML in a fresh Python with no
Django around it. Also the cost of each ``pdf_variant``.

(The lab results PDF and the 2,000 lab results are not built in this branch:
the lab models are not in records/models.py yet.)"""

import datetime
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

from django.db import connection
from django.utils import timezone

from benchmarks.harness import analyze
from messaging.models import Conversation, Message
from portal.accounts.models import Patient, User
from portal.careteams.models import CareLink, CareTeam, Membership
from records import export_builders, files, pdf
from records.models import Document


def _minimal_pdf() -> bytes:
    import pypdfium2

    document = pypdfium2.PdfDocument.new()
    document.new_page(595, 842)
    out = io.BytesIO()
    document.save(out)
    document.close()
    return out.getvalue()


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
    import json, resource, sys, time
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration
    html_path, css_path, base_url, variant, repeat = sys.argv[1:6]
    html = open(html_path, encoding="utf-8").read()
    fonts = FontConfiguration()
    css = CSS(filename=css_path, font_config=fonts)
    variant = None if variant == "none" else variant
    HTML(string=html, base_url=base_url).write_pdf(stylesheets=[css], font_config=fonts, pdf_variant=variant)
    times = []
    for _ in range(int(repeat)):
        start = time.perf_counter()
        HTML(string=html, base_url=base_url).write_pdf(stylesheets=[css], font_config=fonts, pdf_variant=variant)
        times.append(time.perf_counter() - start)
    times.sort()
    print(json.dumps({"seconds": times[len(times) // 2], "min_seconds": times[0],
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def floor(html: str, variant: str | None, repeat=3) -> dict:
    """WeasyPrint alone, in a fresh interpreter: no Django, same HTML, CSS and fonts."""
    with tempfile.NamedTemporaryFile("w", suffix=".html", encoding="utf-8", delete=False) as handle:
        handle.write(html)
    try:
        base = pdf._base_dir()
        output = subprocess.run(  # noqa: S603 (our own interpreter and script)
            [sys.executable, "-c", FLOOR, handle.name, str(base / pdf.STYLESHEET), base.as_uri() + "/",
             variant or "none", str(repeat)],
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
    print(f"\n## Exports: 500 documents, 50 conversations × 12 messages  ({connection.vendor}, {os.cpu_count()} cores)")
    print(f"{'what':<62} {'median s':>8} {'min s':>8} {'peak MiB':>9} {'+MiB':>9}")
    sections = list(export_builders.SECTIONS)
    row(
        "health summary PDF (all sections; latest 25 of 500 documents)",
        in_child(lambda: export_builders.build_summary(user=user, patient=patient, sections=sections), repeat=5),
    )
    row(
        "health summary PDF (identity + care teams)",
        in_child(
            lambda: export_builders.build_summary(user=user, patient=patient, sections=["identity", "care_teams"]), 5
        ),
    )
    row(
        "conversation PDF (12 messages)",
        in_child(
            lambda: export_builders.build_conversation(user=user, patient=patient, conversation_id=conversation.pk), 5
        ),
    )
    row("complete archive ZIP (500 documents, 50 conversation PDFs, FHIR)", in_child(
        lambda: export_builders.build_archive(user=user, patient=patient), repeat=1))  # fmt: skip

    summary_html = export_builders.summary_html(user=user, patient=patient, sections=sections)
    conversation_html = export_builders.conversation_html(patient=patient, conversation=conversation)
    print("\n## Floor: WeasyPrint alone on the same HTML, fresh interpreter, no Django")
    print(f"{'what':<62} {'median s':>8} {'min s':>8} {'peak MiB':>9}")
    for variant in (None, "pdf/ua-1", "pdf/a-3b"):
        row(f"health summary HTML, pdf_variant={variant}", floor(summary_html, variant, repeat=7))
    row(f"conversation HTML, pdf_variant={pdf.PDF_VARIANT}", floor(conversation_html, pdf.PDF_VARIANT, repeat=5))

    print("\n## Is a long table linear? The documents table alone, WeasyPrint floor, pdf/ua-1")
    for rows in (125, 250, 500):
        export_builders.SUMMARY_DOCUMENTS = rows
        html = export_builders.summary_html(user=user, patient=patient, sections=["documents"])
        row(f"{rows} table rows", floor(html, pdf.PDF_VARIANT, repeat=1))
