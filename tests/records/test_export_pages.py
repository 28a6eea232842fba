"""The exports page: request, follow, download; 404 to anyone but the patient."""

import pytest
from django.urls import reverse

from records import exports
from records.models import Export
from tests.records.test_access import PEOPLE, blocked_clinician  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready_export(patient, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        export, _ = exports.request_export(
            user=patient.user, patient=patient, kind="summary", options={"sections": ["identity"]}
        )
    export.refresh_from_db()
    assert export.state == Export.State.READY
    return export


MATRIX = [
    ("get", "exports:page", False, [200, 200, 404, 404, 404, 404, 302]),
    ("get", "exports:list", False, [200, 200, 404, 404, 404, 404, 302]),
    ("get", "exports:download", True, [200, 404, 404, 404, 404, 404, 302]),
]


@pytest.mark.parametrize(("method", "name", "with_pk", "expected"), MATRIX)
@pytest.mark.parametrize("who_index", range(len(PEOPLE)))
def test_exports_access_matrix(
    request, client, login, patient, ready_export, method, name, with_pk, expected, who_index
):
    who = PEOPLE[who_index]
    if who is not None:
        login(request.getfixturevalue(who))
    response = getattr(client, method)(reverse(name, args=[ready_export.pk] if with_pk else []))
    assert response.status_code == expected[who_index], (name, who)
    if who != "patient" and response.status_code != 302:
        assert patient.last_name.encode() not in response.content
    if who == "patient" and name == "exports:download":
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"].startswith('attachment; filename="carnet-synthese-medicale-')


def test_request_from_the_page(client, login, patient, django_capture_on_commit_callbacks):
    login(patient)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("exports:page"), {"kind": "summary", "sections": ["identity", "documents"]})
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.options == {"sections": ["identity", "documents"]}
    page = client.get(reverse("exports:page"))
    assert reverse("exports:download", args=[export.pk]).encode() in page.content
    assert b"hx-trigger" not in page.content  # nothing pending: no polling


def test_pending_export_is_polled(client, login, patient):
    login(patient)
    client.post(reverse("exports:page"), {"kind": "archive"})  # on_commit never runs: stays queued
    page = client.get(reverse("exports:page"))
    assert b'hx-trigger="every 3s"' in page.content
    fragment = client.get(reverse("exports:list"))
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content
    assert b'id="export-list"' in fragment.content
    assert b"En attente" in fragment.content


def test_duplicate_request_reuses_the_pending_export(client, login, patient):
    login(patient)
    client.post(reverse("exports:page"), {"kind": "archive"})
    response = client.post(reverse("exports:page"), {"kind": "archive"}, follow=True)
    assert Export.objects.count() == 1
    assert "déjà en préparation".encode() in response.content


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "kind"),
        ({"kind": "nonsense"}, "kind"),
        ({"kind": "summary"}, "sections"),
        ({"kind": "summary", "sections": ["nonsense"]}, "sections"),
        ({"kind": "conversation"}, "conversation"),
        ({"kind": "conversation", "conversation": "999999"}, "conversation"),
    ],
)
def test_bad_requests_get_a_message_next_to_the_field(client, login, patient, data, field):
    login(patient)
    response = client.post(reverse("exports:page"), data)
    assert response.status_code == 400
    assert f'id="id_{field}_error"'.encode() in response.content
    assert not Export.objects.exists()


def test_another_patients_conversation_cannot_be_chosen(client, login, patient, other_patient, other_team):
    from messaging import services

    theirs = services.start_conversation(
        author=other_patient.user, patient=other_patient, team=other_team, subject="Essoufflement",
        kind="question", body="…",
    )  # fmt: skip
    login(patient)
    page = client.get(reverse("exports:page"))
    assert b"Essoufflement" not in page.content
    response = client.post(reverse("exports:page"), {"kind": "conversation", "conversation": theirs.pk})
    assert response.status_code == 400
    assert not Export.objects.exists()
