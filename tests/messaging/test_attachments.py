"""Attachments: the same checks as document uploads, sealed, hash-verified,
reachable only by the conversation's people, and savable into the documents."""

import io
import os
import tracemalloc

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import InMemoryUploadedFile, SimpleUploadedFile
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


def test_path_like_names_keep_only_their_last_part(attachment):
    assert attachment.display_name == "compte rendu.pdf"


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
    assert (document.patient, document.author_team, document.title) == (patient, team, "compte rendu.pdf")
    assert client.get(reverse("records:download", args=[document.pk])).content == services.read_attachment(
        attachment=attachment
    )
    # Saved again (another page load, a second tab): the same document, not a copy.
    again = client.post(reverse("messaging:save_attachment", args=[attachment.pk]), follow=True)
    assert Document.objects.get() == document
    assert again.redirect_chain[-1][0] == reverse("records:document", args=[document.pk])
    assert "Ce fichier est déjà dans vos documents." in again.content.decode()


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


@pytest.mark.parametrize(
    ("sent_as", "shown_as"),
    [
        ("run.bat", "run.bat"),
        ("x.hta", "x.hta"),
        ("ordonnance.html", "ordonnance.html"),
        ("image.svg", "image.svg"),
        ("a\u202egnp.exe", "agnp.exe"),
    ],
)
def test_downloads_are_named_from_the_content_not_from_the_sender(
    client, login, patient, clinician, conversation, sent_as, shown_as
):
    """Whatever the name, the content decides: these are plain text, so they download as .txt."""
    login(patient)
    client.post(
        reverse("messaging:conversation", args=[conversation.pk]),
        {"body": "Ci-joint.", "attachments": [SimpleUploadedFile(sent_as, b"<html><script>alert(1)</script>")]},
    )
    attachment = Attachment.objects.get()
    assert attachment.display_name == shown_as
    login(clinician)
    response = client.get(reverse("messaging:attachment", args=[attachment.pk]))
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"] == f'attachment; filename="carnet-attachment-{attachment.pk}.txt"'
    page = client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    assert f">{shown_as}</a>" in page.replace("&lt;", "<")


def test_a_pdf_downloads_as_pdf_whatever_its_name(client, login, patient, attachment):
    login(patient)
    response = client.get(reverse("messaging:attachment", args=[attachment.pk]))
    assert response["Content-Disposition"] == f'attachment; filename="carnet-attachment-{attachment.pk}.pdf"'


@pytest.mark.parametrize(
    ("sent_as", "shown_as"),
    [
        ("C:\\Users\\camille\\radio.pdf", "radio.pdf"),
        ("zero\u200bwidth\u2066name\u2069.pdf", "zerowidthname.pdf"),
        ("tab\there\nnew line.pdf", "tab here new line.pdf"),
        ("  ...  ", "piece-jointe"),
        ("", "piece-jointe"),
    ],
)
def test_display_names_are_plain_text(sent_as, shown_as):
    assert services.safe_display_name(sent_as) == shown_as


def test_a_long_name_is_shortened_in_the_middle_and_keeps_its_extension(conversation, patient):
    name = "compte-rendu-" + "tres-long-" * 20 + "fin.pdf"
    message = services.send_message(
        author=patient.user,
        conversation=conversation,
        body="Ci-joint.",
        attachments=[SimpleUploadedFile(name, make_pdf())],
    )
    shown = message.attachments.get().display_name
    assert len(shown) == 100
    assert shown.startswith("compte-rendu-tres-long-") and shown.endswith("long-fin.pdf") and "…" in shown
    assert services.safe_display_name("x" * 300) == "x" * 50 + "…" + "x" * 49


def post_files(client, conversation, uploads):
    return client.post(
        reverse("messaging:conversation", args=[conversation.pk]), {"body": "Ci-joint.", "attachments": uploads}
    )


def test_a_message_takes_a_limited_number_of_files(client, login, patient, conversation, settings, media_root):
    settings.MESSAGE_ATTACHMENTS_MAX_COUNT = 2
    login(patient)
    page = client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    # Stated on the form, as the documents' form states its limit: "20 Mo", never "20,0 Mo".
    assert "Jusqu’à 2 fichiers, 25 Mo en tout" in page and "20 Mo au plus chacun" in page
    response = post_files(client, conversation, [SimpleUploadedFile(f"{i}.txt", b"texte") for i in range(3)])
    assert response.status_code == 200
    assert "2 fichiers au plus" in response.content.decode()
    assert not Attachment.objects.exists() and stored(media_root) == []
    assert (
        post_files(client, conversation, [SimpleUploadedFile(f"{i}.txt", b"texte") for i in range(2)]).status_code
        == 302
    )


def test_a_message_takes_a_limited_total_size(client, login, patient, conversation, settings, media_root):
    settings.MESSAGE_ATTACHMENTS_MAX_BYTES = 1000
    login(patient)
    response = post_files(client, conversation, [SimpleUploadedFile(f"{i}.txt", b"t" * 400) for i in range(3)])
    assert response.status_code == 200
    assert "un message en prend 1000\xa0octets au plus" in response.content.decode()
    assert not Attachment.objects.exists() and stored(media_root) == []
    with pytest.raises(ValidationError):  # the service holds the same limits, whoever calls it
        services.send_message(
            author=patient.user,
            conversation=conversation,
            body="Ci-joint.",
            attachments=[SimpleUploadedFile(f"{i}.txt", b"t" * 400) for i in range(3)],
        )


def received(name, data):
    """An upload as Django's memory handler builds it: written into a buffer chunk by chunk."""
    buffer = io.BytesIO()
    for start in range(0, len(data), 64 * 1024):
        buffer.write(data[start : start + 64 * 1024])
    buffer.seek(0)
    return InMemoryUploadedFile(buffer, "attachments", name, "text/plain", len(data), None)


def test_files_are_read_one_at_a_time(conversation, patient):
    """Five 1 MB files: the sending holds about one file's bytes (and its sealed copy)
    at a time, not all five at once."""
    size = 1024 * 1024
    uploads = [received(f"{i}.txt", bytes([65 + i]) * size) for i in range(5)]
    tracemalloc.start()
    try:
        services.send_message(author=patient.user, conversation=conversation, body="Ci-joint.", attachments=uploads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert Attachment.objects.count() == 5
    assert peak < 3.5 * size, f"peak {peak / size:.1f} MB"


def test_a_form_refused_for_another_field_says_its_files_must_be_attached_again(client, login, patient, conversation):
    """A browser never sends a file twice: the error summary says so, and only when files came."""
    login(patient)
    data = {"team": conversation.team.pk, "kind": "question", "subject": "", "body": "Voici la radio"}
    with_file = client.post(
        reverse("messaging:new"), {**data, "attachments": [SimpleUploadedFile("r.pdf", make_pdf())]}
    )
    assert "joignez-les de nouveau avant d’envoyer" in with_file.content.decode()
    assert "joignez-les de nouveau" not in client.post(reverse("messaging:new"), data).content.decode()
