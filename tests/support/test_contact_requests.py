"""Contact support: a form about accounts, sent signed in or not, that becomes a case
in the support console; the person gets a receipt, then support's answer, by email,
each once. Linked from the footer, the sign-in page and the deactivated-account page."""

import re
import uuid

import pytest
from django.core import mail
from django.urls import reverse

from portal.support import services
from portal.support.models import SupportRequest

pytestmark = pytest.mark.django_db

FIELDS = {
    "name": "Jeanne Martin",
    "email": "jeanne.martin@example.org",
    "topic": "second_factor",
    "message": "J'ai changé de téléphone et je n'ai plus mon application de codes.",
}


def send(client, key=None, **changes):
    return client.post(reverse("contact"), {**FIELDS, **changes, "request_key": key or uuid.uuid4()})


def test_a_signed_out_person_reaches_support_and_gets_a_receipt(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = send(client)

    assert response.status_code == 302 and response["Location"] == reverse("contact_sent")
    case = SupportRequest.objects.get()
    assert (case.name, case.email, case.topic, case.user, case.status) == (
        "Jeanne Martin", "jeanne.martin@example.org", "second_factor", None, "open",
    )  # fmt: skip
    [receipt] = mail.outbox
    assert receipt.to == ["jeanne.martin@example.org"]
    assert f"dossier n° {case.pk}" in receipt.body and "deux jours ouvrés" in receipt.body
    assert "téléphone" not in receipt.body  # the message is not sent back
    assert client.get(response["Location"]).status_code == 200


def test_the_same_form_sent_twice_makes_one_case_and_one_email(client, django_capture_on_commit_callbacks):
    key = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        first, second = send(client, key), send(client, key)

    assert first.status_code == second.status_code == 302
    assert SupportRequest.objects.count() == 1 and len(mail.outbox) == 1


def test_a_retried_email_task_sends_nothing_more(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(client)
    case = SupportRequest.objects.get()

    assert not services.send_request_receipt(case_id=case.pk)
    assert len(mail.outbox) == 1


def test_one_address_sends_a_few_an_hour_then_is_asked_to_wait(client, settings):
    settings.SUPPORT_REQUESTS_PER_HOUR = 2
    assert [send(client).status_code for _ in range(2)] == [302, 302]

    page = send(client)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Réessayez dans" in text and settings.OPERATOR["support_email"] in text
    assert SupportRequest.objects.count() == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"email": "pas-une-adresse"}, "email"),
        ({"topic": "health"}, "topic"),
        ({"message": "   "}, "message"),
        ({"message": "x" * 2001}, "message"),
    ],
)
def test_bad_input_is_shown_back_with_an_error_summary(client, changes, field):
    page = send(client, **changes)

    assert page.status_code == 200
    text = page.content.decode()
    assert re.search(r"<title>\s*Erreur", text)
    assert f'href="#id_{field}"' in text  # the summary links to the field
    assert not SupportRequest.objects.exists()


def test_signed_in_the_form_is_filled_in_and_the_case_names_the_account(client, login, patient):
    login(patient)
    page = client.get(reverse("contact")).content.decode()
    assert f'value="{patient.user.email}"' in page

    send(client, email=patient.user.email)
    assert SupportRequest.objects.get().user == patient.user


def test_support_answers_by_email_once(client, login, support, patient, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(client, email=patient.user.email.upper())
    case = SupportRequest.objects.get()
    mail.outbox.clear()
    login(support)

    listing = client.get(reverse("support:support_requests")).content.decode()
    assert f"#{case.pk}" in listing and "Jeanne Martin" in listing
    assert "1 ouvert" in client.get(reverse("support:home")).content.decode()
    page = client.get(reverse("support:support_request", args=[case.pk])).content.decode()
    assert "plus mon application de codes" in page
    assert reverse("support:account", args=[patient.user.pk]) in page  # the account with that address

    answer = "Nous avons réinitialisé votre seconde preuve d'identité : connectez-vous pour en choisir une."
    url = reverse("support:support_request", args=[case.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"answer": answer}).status_code == 302
        assert client.post(url, {"answer": "Une autre réponse"}).status_code == 302

    case.refresh_from_db()
    assert (case.status, case.answer, case.answered_by) == ("answered", answer, support)
    [email] = mail.outbox
    assert email.to == [patient.user.email.upper()] and answer in email.body


def test_an_empty_answer_is_refused(client, login, support):
    case = services.submit_request(
        fields=FIELDS, user=None, address="192.0.2.1", language="fr", request_key=uuid.uuid4()
    )
    login(support)
    page = client.post(reverse("support:support_request", args=[case.pk]), {"answer": "  "})

    assert page.status_code == 200 and "Écrivez la réponse" in page.content.decode()
    case.refresh_from_db()
    assert case.status == "open"


@pytest.mark.parametrize("who", [None, "patient", "clinician"])
def test_only_support_sees_the_cases(client, login, who, patient, clinician):
    case = services.submit_request(
        fields=FIELDS, user=None, address="192.0.2.1", language="fr", request_key=uuid.uuid4()
    )
    if who:
        login({"patient": patient, "clinician": clinician}[who])
    for url in (reverse("support:support_requests"), reverse("support:support_request", args=[case.pk])):
        response = client.get(url)
        assert response.status_code in (302, 404)
        assert "Jeanne Martin" not in response.content.decode()
    response = client.post(reverse("support:support_request", args=[case.pk]), {"answer": "Réponse"})
    assert response.status_code in (302, 404)
    case.refresh_from_db()
    assert case.status == "open"


def test_the_pages_that_say_contact_support_link_to_the_form(client):
    contact = reverse("contact")
    assert f'href="{contact}"' in client.get(reverse("account_login")).content.decode()
    assert f'href="{contact}"' in client.get(reverse("account_inactive")).content.decode()
    assert f'href="{contact}"' in client.get(reverse("help")).content.decode()


def test_the_form_in_english(client):
    page = client.get(reverse("contact"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Contact support" in page and "Write nothing about your health" in page
