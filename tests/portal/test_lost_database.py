"""PostgreSQL drops a request's connection mid-request (a failover, a restart, an
operator's pg_terminate_backend): a read is answered anyway, on a new connection; a
write answers a clear 503 page, and nothing of it is saved.

The request runs in its own thread with its own connection; the test makes it wait on
a table lock, terminates its backend, then releases the lock."""

import threading

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from messaging import services as messaging
from messaging.models import Message
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def waiting_backends():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # a transaction sees one snapshot otherwise
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def with_connection_dropped(table, request):
    """Run ``request()`` in a thread; terminate its backend while it waits on ``table``."""
    answer = {}

    def run():
        try:
            answer["response"] = request()
        finally:
            connection.close()

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        thread = threading.Thread(target=run)
        thread.start()
        assert wait_for(lambda: waiting_backends(), 20), "the request never reached the table"
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [waiting_backends()])
    thread.join(timeout=60)
    return answer["response"]


def test_a_read_whose_connection_is_dropped_is_answered(postgres, login, patient):
    client = login(patient, on=Client(raise_request_exception=False))
    response = with_connection_dropped("records_document", lambda: client.get(reverse("records:documents")))
    assert response.status_code == 200


def test_a_write_whose_connection_is_dropped_gets_a_clear_503_and_saves_nothing(postgres, login, patient, team):
    conversation = messaging.start_conversation(
        author=patient.user, patient=patient, team=team, subject="Genou", kind="question", body="Bonjour"
    )
    client = login(patient, on=Client(raise_request_exception=False))
    url = reverse("messaging:conversation", args=[conversation.pk])
    response = with_connection_dropped("messaging_message", lambda: client.post(url, {"body": "Encore moi."}))
    assert response.status_code == 503
    assert "vérifiez dans quelques instants sur sa page s’il a été enregistré" in response.content.decode()
    assert not Message.objects.filter(body="Encore moi.").exists()
    assert client.get(url).status_code == 200  # and the next request finds a working connection
