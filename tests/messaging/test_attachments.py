"""Attachments: the same checks as document uploads, sealed, hash-verified,
reachable only by the conversation's people, and savable into the documents."""

import os

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from messaging import services
from messaging.models import Attachment, ImmutableError, Message
from portal.audit.models import AccessLog
from records.models import Document
from tests.records.conftest import make_pdf

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored(media_root):
    return [f for _, _, names in os.walk(media_root) for f in names]


@pytest.fixture
def attachment(clinician, conversation):
    message = services.send_message(
        author=clinician,
        conversation=conversation,
        body="Voici votre compte rendu.",
        attachments=[SimpleUploadedFile("../../compte rendu.pdf", make_pdf())],
    )
    return message.attachments.get()


def test_a_reply_with_an_attachment_is_sealed_under_a_random_name(client, login, patient, conversation, media_root):
    login(patient)
    pdf = make_pdf()
    response = client.post(
        reverse("messaging:conversation", args=[conversation.pk]),
        {"body": "Voici ma radio.", "attachments": [SimpleUploadedFile("radio.pdf", pdf)]},
    )
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    assert attachment.display_name == "radio.pdf"
    assert "radio" not in attachment.file_name
    assert pdf not in default_storage.open(attachment.file_name).read()
    assert client.get(reverse("messaging:attachment", args=[attachment.pk])).content == pdf


def test_a_disallowed_attachment_saves_nothing(client, login, patient, conversation, media_root):
    login(patient)
    before = stored(media_root)
    response = client.post(
        reverse("messaging:conversation", args=[conversation.pk]),
        {
            "body": "Deux fichiers.",
            "attachments": [
                SimpleUploadedFile("ok.pdf", make_pdf()),
                SimpleUploadedFile("photo.pdf", b"MZ\x90\x00" + b"\x00" * 64),
            ],
        },
    )
    assert response.status_code == 200
    assert "Seuls les fichiers PDF" in response.content.decode()
    assert conversation.messages.count() == 1
    assert not Attachment.objects.exists()
    assert stored(media_root) == before


def test_a_bad_attachment_is_reported_with_the_other_errors(client, login, patient, conversation):
    login(patient)
    response = client.post(
        reverse("messaging:new"),
        {"team": conversation.team.pk, "kind": "question", "subject": "Radio", "body": "",
         "attachments": [SimpleUploadedFile("setup.exe", b"MZ\x90\x00" + b"\x00" * 64)]},
    )  # fmt: skip
    errors = response.context["form"].errors
    assert errors["body"] == ["Écrivez un message."]
    assert errors["attachments"] == ["Seuls les fichiers PDF, JPEG, PNG et texte brut sont acceptés."]
    assert Message.objects.count() == 1  # only the fixture's


def test_an_oversized_attachment_is_refused(client, login, patient, conversation, settings):
    settings.DOCUMENT_MAX_BYTES = 100
    login(patient)
    response = client.post(
        reverse("messaging:new"),
        {"team": conversation.team.pk, "kind": "question", "subject": "Radio", "body": "Ci-joint.",
         "attachments": [SimpleUploadedFile("gros.pdf", b"%PDF-1.7" + b"x" * 500)]},
    )  # fmt: skip
    assert response.status_code == 200
    assert "trop volumineux" in response.content.decode()
    assert Message.objects.count() == 1  # only the fixture's


def test_path_like_names_are_flattened(attachment):
    assert attachment.display_name == "compte_rendu.pdf"


@pytest.mark.parametrize(
    ("who", "status"),
    [("patient", 200), ("clinician", 200), ("other_patient", 404), ("other_clinician", 404), ("support", 404)],
)
def test_who_can_download_an_attachment(request, client, login, attachment, who, status):
    login(request.getfixturevalue(who))
    response = client.get(reverse("messaging:attachment", args=[attachment.pk]))
    assert response.status_code == status
    if status == 200:
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["X-Content-Type-Options"] == "nosniff"


def test_anonymous_is_sent_to_sign_in(client, attachment):
    response = client.get(reverse("messaging:attachment", args=[attachment.pk]))
    assert response.status_code == 302


def test_patient_saves_an_attachment_into_their_documents(
    client, login, patient, team, attachment, django_capture_on_commit_callbacks
):
    login(patient)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("messaging:save_attachment", args=[attachment.pk]))
    document = Document.objects.get()
    assert response["Location"] == reverse("records:document", args=[document.pk])
    assert (document.patient, document.author_team, document.title) == (patient, team, "compte_rendu.pdf")
    assert client.get(reverse("records:download", args=[document.pk])).content == services.read_attachment(
        attachment=attachment
    )


def test_only_the_patient_saves_attachments(client, login, clinician, other_patient, attachment):
    for who in (clinician, other_patient):
        login(who)
        assert client.post(reverse("messaging:save_attachment", args=[attachment.pk])).status_code == 404
    assert not Document.objects.exists()


def test_an_altered_attachment_is_not_served(client, login, patient, attachment, caplog):
    with open(default_storage.path(attachment.file_name), "r+b") as handle:
        handle.seek(30)
        handle.write(b"XXXX")
    login(patient)
    response = client.get(reverse("messaging:attachment", args=[attachment.pk]))
    assert response.status_code == 302
    assert f"attachment {attachment.pk} failed its integrity check" in caplog.text


def test_attachments_are_immutable(attachment):
    attachment.display_name = "autre.pdf"
    with pytest.raises(ImmutableError):
        attachment.save()


def test_a_clinician_downloading_is_traced(client, login, clinician, attachment):
    login(clinician)
    client.get(reverse("messaging:attachment", args=[attachment.pk]))
    assert AccessLog.objects.filter(actor=clinician, action="download_attachment").exists()
