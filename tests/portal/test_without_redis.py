"""Redis stops: every page, signing in included, keeps working; allauth's rate limits
go on holding from the database; /healthz says the cache is down.

Against a real redis-server that the test starts on its own port and kills mid-test."""

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_email.models import EmailDevice

from messaging import services as messaging
from messaging.models import Message
from portal import jobs
from portal.celery import app as celery_app
from portal.models import PendingTask
from records.models import Document, Export
from tests.conftest import second_factor_of
from tests.factories import PASSWORD
from tests.records.conftest import make_pdf

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_redis(redis_server, settings, monkeypatch):
    """Cache and broker on the test's own redis-server; tasks really go to the broker."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "BACKEND": "portal.cache.FailoverRedisCache",
                    "LOCATION": redis_server.url, "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}},
    }  # fmt: skip
    monkeypatch.setitem(celery_app.conf, "broker_url", redis_server.url)
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    return redis_server


def sign_in(client, user):
    """The whole sign-in, as a browser does it: password, then an emailed code."""
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    device = second_factor_of(user)
    device.generate_token()
    device = EmailDevice.objects.get(pk=device.pk)
    response = client.post(reverse("accounts:verify"), {"kind": "email", "code": device.token})
    assert response.status_code == 302, response.status_code
    return response


@pytest.mark.django_db(transaction=True)  # tasks are enqueued after a real commit
def test_signing_in_and_using_carnet_while_redis_is_down(
    on_redis, client, patient, team, clinician, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    sign_in(Client(), patient.user)  # with Redis up
    assert cache._cache.get_client().keys("*:rl:*")  # allauth's rate limits were in Redis
    conversation = messaging.start_conversation(
        author=clinician, patient=patient, team=team, subject="Résultats", kind="question", body="Bonjour"
    )

    on_redis.stop()

    assert client.get(reverse("account_login")).status_code == 200
    sign_in(client, patient.user)
    for name in ("patient_home", "messaging:inbox", "records:documents", "records:profile", "exports:page"):
        assert client.get(reverse(name)).status_code == 200, name
    reply = client.post(reverse("messaging:conversation", args=[conversation.pk]), {"body": "Merci."})
    assert reply.status_code == 302 and Message.objects.filter(author=patient.user).exists()
    assert client.post(reverse("exports:page"), {"kind": "archive"}).status_code == 302
    assert Export.objects.filter(patient=patient, state="queued").exists()  # for the sweep once Redis is back
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["checks"]["cache"].startswith("error:")
    # A document uploaded now is processed within a minute of Redis's return, not at the
    # next sweep of documents left processing (every 5 minutes, for those 5 minutes old).
    upload = SimpleUploadedFile("bilan.pdf", make_pdf(), content_type="application/pdf")
    data = {"title": "Bilan", "category": "other", "care_date": "2026-10-20", "file": upload}
    assert client.post(reverse("records:upload"), data).status_code == 302
    document = Document.objects.get(title="Bilan")
    # The new-sign-in notice and the processing could not be handed to Celery: they wait
    # in the database. (So does the first sign-in's notice, handed over but kept until a
    # worker has run it: none runs here.)
    notice = ("portal.accounts.tasks.send_security_notice", [patient.user.pk, "new_sign_in", None])
    assert list(PendingTask.objects.order_by("pk").values_list("task", "args")) == [
        notice,
        notice,
        ("records.tasks.process_document", [document.pk]),
    ]

    on_redis.start()
    waiting = PendingTask.objects.filter(handed_at__isnull=True)
    assert waiting.count() >= 2
    # Handed over now; kept until a worker has run them (none here).
    assert jobs.relay_pending_tasks() >= 2 and not waiting.exists()
    assert client.get(reverse("patient_home")).status_code == 200


def test_rate_limits_hold_from_the_database_while_redis_is_down(on_redis, client, patient, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "3/m/ip"}
    on_redis.stop()
    for _ in range(3):
        client.post(reverse("account_login"), {"login": patient.user.email, "password": PASSWORD})
        client.logout()
    refused = client.post(reverse("account_login"), {"login": patient.user.email, "password": PASSWORD})
    assert refused.status_code == 429
    assert "Patientez une minute" in refused.content.decode()
    # From another address the limit is another one.
    other = Client(REMOTE_ADDR="10.4.4.4")
    assert other.post(reverse("account_login"), {"login": patient.user.email, "password": PASSWORD}).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_a_stalled_broker_costs_one_wait_not_one_per_task(on_redis, patient):
    """Redis takes the connection and never answers (stopped with SIGSTOP): the first
    task waits for the socket's timeout, the next ones are kept at once, and once the
    rest is over the broker is asked again."""
    import os
    import signal
    import time

    from portal.accounts.tasks import send_security_notice

    os.kill(on_redis.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert jobs.enqueue(send_security_notice, patient.user_id, "new_sign_in", None) is False
        first = time.monotonic() - started
        started = time.monotonic()
        for _ in range(3):
            assert jobs.enqueue(send_security_notice, patient.user_id, "new_sign_in", None) is False
        rest = time.monotonic() - started
    finally:
        os.kill(on_redis.process.pid, signal.SIGCONT)
    assert first >= 1 and rest < 0.5, (first, rest)
    assert PendingTask.objects.count() == 4
    jobs._broker_failed_at -= jobs.BROKER_REST_SECONDS  # the rest is over
    assert jobs.enqueue(send_security_notice, patient.user_id, "new_sign_in", None) is True


def test_an_email_redis_lost_on_restart_is_handed_over_again(on_redis, patient, django_capture_on_commit_callbacks):
    """A real redis-server takes the task, then restarts without its data (no worker took
    it yet): the task's row, kept until it has run, is handed over again by the relay once
    ``LOST_AFTER`` has passed, and is in the new Redis's queue."""
    import datetime

    import redis
    import time_machine
    from django.utils import timezone

    from portal.accounts.tasks import send_security_notice

    queued = redis.Redis.from_url(on_redis.url)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue_on_commit(send_security_notice, patient.user_id, "new_sign_in", None)
    queue = celery_app.conf.task_default_queue
    assert queued.llen(queue) == 1 and PendingTask.objects.get().handed_at is not None

    on_redis.stop()  # killed, saved nothing
    on_redis.start()
    assert queued.llen(queue) == 0  # lost
    assert jobs.relay_pending_tasks() == 0  # not yet: it may still be waiting for a worker
    with time_machine.travel(timezone.now() + jobs.LOST_AFTER + datetime.timedelta(minutes=1)):
        assert jobs.relay_pending_tasks() == 1
    assert queued.llen(queue) == 1
    assert PendingTask.objects.count() == 1  # until a worker has run it
