"""What a newcomer meets with `make run`: a clear word on a busy port, emails printed
readably, Carnet's own 404, one "forgotten password" link."""

import io
import socket
import subprocess
from pathlib import Path

import pytest
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from portal.mail import ReadableConsoleBackend

ROOT = Path(__file__).resolve().parents[2]


def test_a_busy_port_is_refused_before_anything_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(["scripts/check-port", "127.0.0.1", str(port)], cwd=ROOT, capture_output=True, text=True)
    assert busy.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in busy.stderr and "make run PORT=" in busy.stderr
    free = subprocess.run(["scripts/check-port", "127.0.0.1", str(port)], cwd=ROOT, capture_output=True, text=True)
    assert free.returncode == 0, free.stderr


def test_development_emails_print_decoded_with_whole_links():
    link = "http://127.0.0.1:8000/accounts/invitation/" + "x" * 80 + "/"
    message = EmailMultiAlternatives(
        "Carnet – Votre invitation", f"Bonjour Léa,\n\nCréez votre accès : {link}\n", "no-reply@carnet.example",
        ["lea@example.org"],
    )  # fmt: skip
    message.attach_alternative("<p>Bonjour</p>", "text/html")
    stream = io.StringIO()
    ReadableConsoleBackend(stream=stream).send_messages([message])
    printed = stream.getvalue()
    assert "Subject: Carnet – Votre invitation" in printed and "Bonjour Léa," in printed
    assert link in printed.splitlines()[-3]
    assert "=C3=A9" not in printed and "(also sent as text/html)" in printed


@pytest.mark.django_db
def test_under_debug_a_missing_page_is_carnets_own(client, settings):
    settings.DEBUG = True
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "<h1>Page introuvable</h1>" in response.content.decode()
    assert "Using the URLconf" not in response.content.decode()


@pytest.mark.django_db
def test_the_sign_in_page_offers_the_forgotten_password_link_once(client):
    html = client.get(reverse("account_login")).content.decode()
    assert html.count(reverse("account_reset_password")) == 1


@pytest.mark.django_db
def test_english_dates_put_the_day_first(client, login, patient):
    import datetime

    from django.utils import formats, translation

    with translation.override("en"):
        assert formats.date_format(datetime.date(2026, 10, 2), "SHORT_DATE_FORMAT") == "02/10/2026"
        assert formats.date_format(datetime.date(2026, 10, 2), "DATE_FORMAT") == "2 October 2026"


@pytest.mark.django_db
def test_a_patients_own_upload_says_you(client, login, patient):
    from records.models import Document

    document = Document.objects.create(
        patient=patient, title="Ordonnance", category="other", care_date="2026-01-01", author=patient.user,
        content_type="application/pdf", size=1, sha256="0" * 64, key_id="k", file_name="f", status="ready",
    )  # fmt: skip
    login(patient)
    assert "<dd>Vous</dd>" in client.get(reverse("records:document", args=[document.pk])).content.decode()
    listing = client.get(reverse("records:documents")).content.decode()
    assert "Vous" in listing and "Le patient" not in listing


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "french", "english"),
    [
        ("help", "Je n’ai pas reçu mon invitation.", "I did not get my invitation."),
        ("privacy", "Délégué à la protection des données", "Data protection officer"),
        ("terms", "Conditions d’utilisation", "Terms of use"),
        ("accessibility", "Défenseur des droits", "Défenseur des droits, Libre réponse 71120"),
    ],
)
def test_trust_pages_in_both_languages_linked_from_every_footer(
    client, login, patient, settings, name, french, english
):
    settings.OPERATOR = {**settings.OPERATOR, "dpo_email": "dpo@hopital.example"}
    page = client.get(reverse(name))
    assert page.status_code == 200 and french in page.content.decode()
    if name == "privacy":
        assert "dpo@hopital.example" in page.content.decode()
    english_page = client.get(reverse(name), headers={"accept-language": "en"})
    assert english in english_page.content.decode()
    login(patient)
    footer = client.get(reverse("patient_home")).content.decode().split('class="site-footer"')[1]
    assert f'href="{reverse(name)}"' in footer


@pytest.mark.django_db
def test_the_terms_in_force_are_accepted_once_per_version_then_on_to_the_page(client, patient, settings):
    from django_otp import DEVICE_ID_SESSION_KEY

    from portal.models import TermsAcceptance
    from tests.conftest import second_factor_of

    TermsAcceptance.objects.filter(user=patient.user).delete()  # a first sign-in
    client.force_login(patient.user)  # signed in and past the second factor, terms not yet accepted
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = second_factor_of(patient.user).persistent_id
    session.save()
    response = client.get(reverse("records:documents"))
    assert response["Location"] == reverse("terms_accept") + "?next=%2Fmy%2Fdocuments%2F"
    assert client.get(reverse("privacy")).status_code == 200  # the other public pages stay open
    background = client.get(reverse("patient_home"), headers={"x-carnet-background": "1"})
    assert background.status_code == 204
    page = client.get(response["Location"])
    assert "J’accepte les conditions d’utilisation" in page.content.decode()
    # What a professional or support agent accepts is in them too.
    assert "Si vous êtes un professionnel ou de l’assistance" in page.content.decode()
    for _ in range(2):  # a double submit records once
        accepted = client.post(reverse("terms_accept"), {"next": "/my/documents/"})
    assert accepted["Location"] == "/my/documents/"
    assert TermsAcceptance.objects.filter(user=patient.user, version=settings.TERMS_VERSION).count() == 1
    assert client.get(reverse("records:documents")).status_code == 200
    assert client.post(reverse("terms_accept"), {"next": "https://evil.example/"})["Location"] == reverse("home")
    settings.TERMS_VERSION = "2027-01-01"  # new terms: accepted again
    assert client.get(reverse("records:documents"))["Location"].startswith(reverse("terms_accept"))
