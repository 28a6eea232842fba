"""A worker killed in the middle of an export: the export still completes, once."""

import datetime
import os
import signal
import subprocess
import sys
import uuid

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from messaging.models import Conversation, Message
from portal.celery import app as celery_app
from records import exports, files
from records.models import Document, Export
from tests.conftest import ROOT, database_url, wait_for
from tests.records.conftest import make_pdf

pytestmark = pytest.mark.django_db(transaction=True)


def start_worker(queue, media_root):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(media_root),
        "EXPORT_LEASE_SECONDS": "3",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool=solo", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def test_worker_killed_mid_export_completes_once(
    redis_url, patient, clinician, team, media_root, monkeypatch, settings
):
    data = make_pdf()
    rows = []
    for n in range(30):
        name, sha256, key_id = files.store(data)
        rows.append(
            Document(
                patient=patient,
                title=f"Examen {n}",
                category="report",
                care_date=datetime.date(2026, 1, 1),
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
        [Conversation(patient=patient, team=team, subject=f"Question {n}", started_by=patient.user) for n in range(40)]
    )
    Message.objects.bulk_create(
        [Message(conversation=c, author=patient.user, body="Bonjour " * 200) for c in threads for _ in range(8)]
    )
    queue = f"test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    settings.EXPORT_LEASE_SECONDS = 3

    first = start_worker(queue, media_root)
    try:
        export, _ = exports.request_export(user=patient.user, patient=patient, kind="archive", options={})
        assert wait_for(lambda: Export.objects.filter(pk=export.pk, state="running", progress__gte=20).exists(), 90)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    export.refresh_from_db()
    assert export.state == Export.State.RUNNING and export.attempts == 1  # the dead run left it mid-way

    second = start_worker(queue, media_root)
    try:
        # Once the dead run's lease has expired, the periodic sweep hands it to a live worker.
        assert wait_for(lambda: Export.objects.get(pk=export.pk).lease_until < timezone.now(), 10)
        exports.sweep_exports()
        assert wait_for(
            lambda: Export.objects.filter(pk=export.pk, state="ready", emailed_at__isnull=False).exists(), 120
        )
        exports.sweep_exports()  # nothing left to do: no second run, no second email
    finally:
        second.terminate()
        second.wait(timeout=20)
    export.refresh_from_db()
    assert export.state == Export.State.READY and export.attempts == 2
    assert default_storage.listdir("exports")[1] == [os.path.basename(export.file_name)]
    assert exports.read_export(export=export).startswith(b"PK")
