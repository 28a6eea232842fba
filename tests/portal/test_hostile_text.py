"""Text that disguises itself: direction controls (« \\u202egpj.exe » shows « exe.jpg »)
are dropped from every text a form or the API keeps, and a text of invisible characters
only (zero-width spaces) is no text: a required field says so."""

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse

from records.models import Document
from tests.records.conftest import make_pdf

pytestmark = pytest.mark.django_db
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji of three joined by zero-width joiners


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("\u202eevil", "evil"),
        ("a\u2066b\u2069c", "abc"),
        (f"Famille {FAMILY} é", f"Famille {FAMILY} é"),  # joiners inside an emoji stay
        ("  \u202d Radio  ", "Radio"),
        ("\u200fמסמך", "\u200fמסמך"),  # a right-to-left mark is how Hebrew or Arabic is written
    ],
)
def test_every_text_field_drops_direction_controls(typed, kept):
    assert forms.CharField().clean(typed) == kept


@pytest.mark.parametrize("typed", ["\u200b\u200b", "\u202e", " \u2060 \ufeff "])
def test_a_text_of_invisible_characters_only_is_no_text(typed):
    with pytest.raises(ValidationError) as refused:
        forms.CharField().clean(typed)
    assert refused.value.code == "required"


def test_a_password_is_kept_as_typed():
    typed = " \u202emot de passe "
    assert forms.CharField(strip=False).clean(typed) == typed


def test_a_document_title_and_a_subject_through_the_pages(client, login, patient, team, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from messaging.models import Conversation

    settings.MEDIA_ROOT = tmp_path / "media"
    login(patient)
    client.post(
        reverse("records:upload"),
        {"title": f"\u202eevil {FAMILY}", "category": "other", "care_date": "2026-10-20",
         "file": SimpleUploadedFile("a.pdf", make_pdf(), content_type="application/pdf")},
    )  # fmt: skip
    assert Document.objects.get().title == f"evil {FAMILY}"
    response = client.post(
        reverse("messaging:new"), {"team": team.pk, "kind": "question", "subject": "\u200b\u200b", "body": "Bonjour"}
    )
    assert response.status_code == 200 and not Conversation.objects.exists()
    assert 'id="id_subject_error"' in response.content.decode()
