"""A form sent twice at the same instant (a double click, a retry on a slow network)
acts once, and both answers send the user to the same place.

The submits are real concurrent requests: one thread each, each with its own
PostgreSQL connection, started together."""

import datetime
import re
import threading
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from agenda.models import Appointment
from fhir_api import services as api
from fhir_api.models import ApiClient, ApiClientEvent
from messaging import services as messaging
from messaging.models import Conversation, Message, Notification, ReplyTemplate
from portal.accounts.models import Invitation
from portal.models import FormSubmission
from records import services as records
from records.models import Allergy, Document, Export, LabReport, Prescription, ProfileComment, RecordEvent
from tests.conftest import ROOT
from tests.factories import AppointmentFactory, CareLinkFactory, PatientFactory
from tests.records.conftest import make_pdf

TODAY = datetime.date.today()


def at_once(requests):
    """Run each ``request()`` in its own thread (own DB connection), released together."""
    barrier = threading.Barrier(len(requests))
    answers = [None] * len(requests)
    errors = []

    def run(index, request):
        try:
            barrier.wait(timeout=10)
            answers[index] = request()
        except Exception as error:  # reported below, with the test's own assertion
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n, request)) for n, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return answers


def signed_in_clients(login, who, count=2):
    return [login(who, on=Client()) for _ in range(count)]


def submit_twice_at_once(login, who, url, data):
    """The same rendered form (one token) sent by two simultaneous requests."""
    token = str(uuid.uuid4())
    clients = signed_in_clients(login, who)
    return at_once([lambda c=c: c.post(url, {**data(), "form_token": token}) for c in clients])


@pytest.fixture
def renewable(patient, clinician, team):
    return Prescription.objects.create(
        patient=patient, medication="Ramipril 5 mg", dosage="1 comprimé", frequency="le matin",
        start_date=TODAY - datetime.timedelta(days=30), renewable=True, prescriber=clinician, team=team,
    )  # fmt: skip


def pdf_upload():
    return SimpleUploadedFile("compte-rendu.pdf", make_pdf(), content_type="application/pdf")


# (who submits, URL, form data, the rows one submit creates); f: the test's fixtures
CASES = {
    "reply": (
        "patient",
        lambda f: reverse("messaging:conversation", args=[f["conversation"].pk]),
        lambda f: {"body": "Merci, à demain."},
        lambda: Message.objects.count(),
    ),
    "new conversation": (
        "patient",
        lambda f: reverse("messaging:new"),
        lambda f: {"team": f["team"].pk, "kind": "question", "subject": "Vaccin", "body": "Puis-je venir lundi ?"},
        lambda: Conversation.objects.count(),
    ),
    "renewal": (
        "patient",
        lambda f: reverse("records:request_renewal", args=[f["renewable"].pk]),
        lambda f: {},
        lambda: Conversation.objects.count(),
    ),
    "upload": (
        "patient",
        lambda f: reverse("records:upload"),
        lambda f: {"title": "Radio du genou", "category": "imaging", "care_date": "2026-10-20", "file": pdf_upload()},
        lambda: Document.objects.count(),
    ),
    "profile entry": (
        "patient",
        lambda f: reverse("records:add_profile_entry", args=["allergy"]),
        lambda f: {"allergy-substance": "Arachide", "allergy-reaction": "urticaire", "allergy-severity": "severe"},
        lambda: Allergy.objects.count(),
    ),
    "export": (
        "patient",
        lambda f: reverse("exports:page"),
        lambda f: {"kind": "archive"},
        lambda: Export.objects.count(),
    ),
    "prescription": (
        "clinician",
        lambda f: reverse("records:add_prescription", args=[f["patient"].pk]),
        lambda f: {
            "medication": "Doliprane",
            "dosage": "1 g",
            "frequency": "si douleur",
            "route": "oral",
            "start_date": "2026-11-10",
        },
        lambda: Prescription.objects.count(),
    ),
    "lab report": (
        "clinician",
        lambda f: reverse("records:add_lab_report", args=[f["patient"].pk]),
        lambda f: {
            "title": "Bilan",
            "collected_on": "2026-11-01",
            "obs-TOTAL_FORMS": "1",
            "obs-INITIAL_FORMS": "0",
            "obs-0-loinc": "2160-0",
            "obs-0-name": "Créatinine",
            "obs-0-value": "9.5",
            "obs-0-unit": "mg/L",
        },
        lambda: LabReport.objects.count(),
    ),
    "reply template": (
        "clinician",
        lambda f: reverse("messaging:reply_templates"),
        lambda f: {"team": f["team"].pk, "title": "Rendez-vous", "body": "Appelez le secrétariat."},
        lambda: ReplyTemplate.objects.count(),
    ),
    "appointment": (
        "clinician",
        lambda f: reverse("agenda:book", args=[f["patient"].pk]),
        lambda f: {
            "team": f["team"].pk,
            "day": (TODAY + datetime.timedelta(days=3)).isoformat(),
            "time": "10:30",
            "duration_minutes": "30",
            "mode": "in_person",
            "place": "Cabinet, salle 2",
            "with_whom": "Dr Martin",
        },
        lambda: Appointment.objects.count(),
    ),
    "reschedule request": (
        "patient",
        lambda f: reverse("agenda:reschedule", args=[f["appointment"].pk]),
        lambda f: {"message": "Pourrait-on le décaler à jeudi ?"},
        lambda: Conversation.objects.count(),
    ),
    "clinician profile entry": (
        "clinician",
        lambda f: reverse("records:clinician_add_profile_entry", args=[f["patient"].pk, "allergy"]),
        lambda f: {"substance": "Pénicilline", "reaction": "œdème", "severity": "severe"},
        lambda: Allergy.objects.count(),
    ),
    "profile comment": (
        "patient",
        lambda f: reverse("records:comment_profile_entry", args=["allergy", f["clinician_allergy"].pk]),
        lambda f: {"body": "Je ne suis pas allergique."},
        lambda: ProfileComment.objects.count(),
    ),
    "lab value correction": (
        "clinician",
        lambda f: reverse("records:correct_observation", args=[f["observation"].pk]),
        lambda f: {"value": "1.25", "reason": "Erreur de saisie"},
        lambda: RecordEvent.objects.count(),
    ),
    "invitation": (
        "clinician",
        lambda f: reverse("careteams:invite_patient", args=[f["without_login"].pk]),
        lambda f: {"email": "lea@example.org"},
        lambda: Invitation.objects.count(),
    ),
    "support's API client": (
        "support",
        lambda f: reverse("support:new_api_client"),
        lambda f: {"team": f["team"].pk, "name": "Logiciel du cabinet", "scopes": [API_SCOPE]},
        lambda: ApiClient.objects.count(),
    ),
    "support's new secret": (
        "support",
        lambda f: reverse("support:change_api_client", args=[f["api_client"].pk, "rotate"]),
        lambda f: {},
        lambda: ApiClientEvent.objects.filter(action="rotated").count(),
    ),
    "support's revocation": (
        "support",
        lambda f: reverse("support:change_api_client", args=[f["api_client"].pk, "revoke"]),
        lambda f: {},
        lambda: ApiClientEvent.objects.filter(action="revoked").count(),
    ),
}
API_SCOPE = "system/DocumentReference.c"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", CASES)
def test_the_same_form_sent_twice_at_once_acts_once(
    case, postgres, login, patient, clinician, support, team, renewable
):
    without_login = PatientFactory(user=None)
    CareLinkFactory(patient=without_login, team=team)
    report = records.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan", collected_on=TODAY,
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": "1.52", "unit": "g/L"}],
    )  # fmt: skip
    fixtures = {
        "patient": patient,
        "clinician_allergy": Allergy.objects.create(patient=patient, author=clinician, team=team, substance="Iode"),
        "observation": report.observations.get(),
        "team": team,
        "renewable": renewable,
        "without_login": without_login,
        "conversation": messaging.start_conversation(
            author=patient.user, patient=patient, team=team, subject="Genou", kind="question", body="Bonjour"
        ),
        "appointment": AppointmentFactory(patient=patient, team=team, created_by=clinician),
        "api_client": api.register_client(team=team, name="Ancien", scopes=[API_SCOPE], created_by=support)[0],
    }
    who, url, data, count = CASES[case]
    before = count()

    first, second = submit_twice_at_once(
        login,
        {"patient": patient, "clinician": clinician, "support": support}[who],
        url(fixtures),
        lambda: data(fixtures),
    )

    assert count() == before + 1
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]


@pytest.mark.django_db(transaction=True)
def test_a_message_sent_twice_at_once_notifies_once(postgres, login, patient, clinician, team):
    conversation = messaging.start_conversation(
        author=clinician, patient=patient, team=team, subject="Résultats", kind="question", body="Bonjour"
    )
    url = reverse("messaging:conversation", args=[conversation.pk])
    submit_twice_at_once(login, patient, url, lambda: {"body": "Merci docteur."})
    assert conversation.messages.filter(author=patient.user).count() == 1
    assert Notification.objects.filter(message__author=patient.user).count() == 1


@pytest.mark.django_db(transaction=True)
def test_supports_new_secret_pressed_twice_at_once_rotates_once(postgres, login, support, team):
    """« New secret » double-clicked on support's console: one rotation, one event in the
    client's trail, and the secret both answers lead to is shown once."""
    registered = api.register_client(team=team, name="Logiciel", scopes=[API_SCOPE], created_by=support)[0]
    original = ApiClient.objects.select_related("application").get(pk=registered.pk).application.client_secret
    url = reverse("support:change_api_client", args=[registered.pk, "rotate"])
    token = str(uuid.uuid4())
    clients = signed_in_clients(login, support)
    first, second = at_once([lambda c=c: c.post(url, {"form_token": token}) for c in clients])

    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == reverse("support:api_client_secret", args=[registered.pk])
    assert list(ApiClientEvent.objects.filter(client=registered).order_by("pk").values_list("action", flat=True)) == [
        "registered",
        "rotated",
    ]
    registered.refresh_from_db()
    assert registered.secret_rotated_at is not None
    assert registered.application.client_secret != original
    pages = [c.get(first["Location"]).content.decode() for c in clients]
    shown = [re.findall(r'<code class="break">([^<]+)</code>', page) for page in pages]
    assert sorted(len(codes) for codes in shown) == [0, 2]  # the client ID and the secret, on one page only
    assert sum("n’est plus disponible" in page for page in pages) == 1


@pytest.mark.django_db(transaction=True)
def test_two_renewal_requests_from_two_pages_at_once_open_one_conversation(postgres, login, patient, renewable):
    """Two tabs, two tokens: the prescription's lock, not the token, keeps it to one."""
    url = reverse("records:request_renewal", args=[renewable.pk])
    clients = signed_in_clients(login, patient)
    first, second = at_once([lambda c=c: c.post(url, {"form_token": str(uuid.uuid4())}) for c in clients])
    conversation = Conversation.objects.get(prescription=renewable)
    assert first["Location"] == second["Location"] == reverse("messaging:conversation", args=[conversation.pk])


def _booking(team, time, day=TODAY + datetime.timedelta(days=3)):
    return {
        "team": team.pk, "day": day.isoformat(), "time": time, "duration_minutes": "30", "mode": "in_person",
        "place": "Cabinet, salle 2", "with_whom": "Dr Martin", "form_token": str(uuid.uuid4()),
    }  # fmt: skip


CLASH = "Le patient a déjà un rendez-vous avec cette équipe"


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_bookings_sent_at_once_from_two_tabs_book_one(postgres, login, patient, clinician, team):
    """Two tabs, two tokens, 10:30 and 10:45 for the same patient and team: both pass the
    form's check at the same instant, and the lock on the patient in the booking's
    transaction makes the second see the first. One is booked; the other form is shown
    again saying why, next to the time."""
    url = reverse("agenda:book", args=[patient.pk])
    clients = signed_in_clients(login, clinician)
    answers = at_once(
        [lambda c=c, t=t: c.post(url, _booking(team, t)) for c, t in zip(clients, ["10:30", "10:45"], strict=True)]
    )
    assert Appointment.objects.count() == 1
    assert sorted(answer.status_code for answer in answers) == [200, 302]
    refused = next(answer for answer in answers if answer.status_code == 200).content.decode()
    assert CLASH in refused


@pytest.mark.django_db(transaction=True)
def test_two_appointments_moved_at_once_into_one_slot_move_one(postgres, login, patient, clinician, team):
    """The same race on a change: 9:00 and 14:00 both moved to 11:00 at the same instant."""
    day = TODAY + datetime.timedelta(days=4)
    first, second = (
        AppointmentFactory(patient=patient, team=team, starts_at=timezone.make_aware(datetime.datetime.combine(
            day, datetime.time(hour)))) for hour in (9, 14)
    )  # fmt: skip
    clients = signed_in_clients(login, clinician)
    answers = at_once(
        [
            lambda c=c, a=a: c.post(reverse("agenda:edit", args=[a.pk]), _booking(team, "11:00", day=day))
            for c, a in zip(clients, [first, second], strict=True)
        ]
    )
    assert sorted(answer.status_code for answer in answers) == [200, 302]
    starts = sorted(timezone.localtime(a.starts_at).hour for a in Appointment.objects.all())
    assert starts in ([9, 11], [11, 14])
    assert CLASH in next(answer for answer in answers if answer.status_code == 200).content.decode()


@pytest.mark.django_db
def test_a_form_sent_again_later_answers_as_the_first_time(client, login, patient, team):
    login(patient)
    data = {
        "team": team.pk,
        "kind": "question",
        "subject": "Vaccin",
        "body": "Lundi ?",
        "form_token": str(uuid.uuid4()),
    }
    first = client.post(reverse("messaging:new"), data)
    again = client.post(reverse("messaging:new"), data)  # the back button, then "send" again
    assert again.status_code == 302 and again["Location"] == first["Location"]
    assert Conversation.objects.count() == 1


@pytest.mark.django_db
def test_a_form_shown_again_with_errors_can_be_corrected_and_sent(client, login, patient, team):
    login(patient)
    token = str(uuid.uuid4())
    data = {"team": team.pk, "kind": "question", "subject": "Vaccin", "form_token": token}
    assert client.post(reverse("messaging:new"), {**data, "body": ""}).status_code == 200
    assert not FormSubmission.objects.exists()
    assert client.post(reverse("messaging:new"), {**data, "body": "Lundi ?"}).status_code == 302
    assert Conversation.objects.count() == 1


@pytest.mark.django_db
def test_tokens_are_per_user(client, login, patient, other_patient, team, other_team):
    token = str(uuid.uuid4())
    for who, their_team in ((patient, team), (other_patient, other_team)):
        login(who)
        data = {"team": their_team.pk, "kind": "question", "subject": "Vaccin", "body": "Lundi ?", "form_token": token}
        assert client.post(reverse("messaging:new"), data).status_code == 302
    assert Conversation.objects.count() == 2


def _email_codes_to(user):
    from django.conf import settings
    from django.core import mail

    return [m for m in mail.outbox if m.subject == settings.OTP_EMAIL_SUBJECT and m.to == [user.email]]


def _code_sender(route, patient):
    """Who presses « Send me a code by email » on ``route``: on the second step of sign-in,
    someone with codes by email; on the enrolment page, someone with no second factor yet."""
    from tests.conftest import second_factor_of

    if route == "accounts:verify":
        second_factor_of(patient.user)
        return patient.user
    return PatientFactory().user


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("route", ["accounts:verify", "accounts:enrol_email"])
def test_send_me_a_code_pressed_twice_at_once_sends_one_email(route, postgres, password_only_login, patient):
    user = _code_sender(route, patient)
    clients = [password_only_login(user, on=Client()) for _ in range(2)]
    data = {"action": "send-email", "next": "/my/", "form_token": str(uuid.uuid4())}
    first, second = at_once([lambda c=c: c.post(reverse(route), data) for c in clients])
    assert len(_email_codes_to(user)) == 1
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == reverse(route) + "?next=%2Fmy%2F"


@pytest.mark.django_db
@pytest.mark.parametrize("route", ["accounts:verify", "accounts:enrol_email"])
def test_send_me_a_code_sent_again_later_sends_nothing_more(route, client, password_only_login, patient):
    """The back button, minutes later, then the same form again: its answer, not a new email
    (a new code is asked from the page the first answer leads to, with a new token)."""
    import time_machine
    from django.utils import timezone

    user = _code_sender(route, patient)
    password_only_login(user)
    data = {"action": "send-email", "next": "/my/", "form_token": str(uuid.uuid4())}
    first = client.post(reverse(route), data)
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=5)):  # past the cool-down
        again = client.post(reverse(route), data)
        assert again.status_code == 302 and again["Location"] == first["Location"]
        assert len(_email_codes_to(user)) == 1
        page = client.get(first["Location"]).content.decode()
        fresh = re.search(r'name="action" value="send-email">', page) and re.findall(
            r'name="form_token" value="([^"]+)"', page
        )
        assert fresh and data["form_token"] not in fresh
        client.post(reverse(route), {**data, "form_token": fresh[0]})
        assert len(_email_codes_to(user)) == 2  # the page's new form sends a new code


# Forms that need no token, and why.
TOKENLESS_FORMS = {
    "account/login.html": "signing in twice is harmless (and axes counts failures)",
    "base.html": "language choice and sign-out: the same result however often",
    "support/home.html": "a search: reads only",
    "support/act.html": "support actions carry their own request_key (SupportAction, unique)",
    "support/create_account.html": "support actions carry their own request_key (SupportAction, unique)",
    "support/invite_patient.html": "support actions carry their own request_key (SupportAction, unique)",
    "support/report.html": "support's answer carries its own request_key (SupportAction, unique)",
    "support/request.html": "answering locks the case: a second submit finds it answered",
    "support/representations.html": "support actions carry their own request_key (SupportAction, unique)",
    "support/end_representation.html": "support actions carry their own request_key (SupportAction, unique)",
    "support/confirm_merge.html": "support actions carry their own request_key (SupportAction, unique)",
}
# Views that accept POST without @idempotent, and why.
# (a module, or one view of it: support's API-client pages are guarded like the rest).
TOKENLESS_VIEWS = {
    **{
        f"portal.support.views.{name}": "support actions carry their own request_key (SupportAction, unique)"
        for name in (
            "act",
            "confirm_merge",
            "invite_patient",
            "create_account",
            "report",
            "register_patient",
            "representations",
            "end_representation",
        )
    },
    **{
        f"portal.support.views.{name}": "a page that reads only: a POST to it changes nothing"
        for name in ("account", "audit", "reports", "support_requests", "api_clients")
    },
    "portal.support.views.home": "a search: reads only (kept in the session)",
    "portal.support.views.support_request": "answering locks the case: a second submit finds it answered",
    "portal.accounts.passkeys": "WebAuthn ceremonies, JSON from the library's script: each challenge is taken out "
    "of the session before it is checked, and a credential is unique (a second answer makes no second passkey)",
}


def test_every_post_form_carries_a_token():
    missing = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        name = str(path.relative_to(ROOT / "templates"))
        for form in re.findall(r"<form\b[^>]*>.*?</form>", Path(path).read_text(), flags=re.S | re.I):
            if re.search(r'method="post"', form, re.I) and "{% form_token %}" not in form:
                missing.append(name)
    assert set(missing) <= set(TOKENLESS_FORMS), sorted(set(missing) - set(TOKENLESS_FORMS))


def _callbacks(resolver):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _callbacks(pattern)
        elif isinstance(pattern, URLPattern):
            yield pattern.callback


def _accepts_post(view) -> bool:
    """False when a ``require_http_methods`` in the decorator chain leaves POST out."""
    while view is not None:
        for cell in view.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if isinstance(value, list) and value and all(isinstance(item, str) and item.isupper() for item in value):
                return "POST" in value
        view = getattr(view, "__wrapped__", None)
    return True


def test_every_view_of_ours_that_accepts_post_is_idempotent():
    ours = ("portal", "records", "messaging", "agenda")
    missing = [
        f"{view.__module__}.{view.__name__}"
        for view in _callbacks(get_resolver())
        if view.__module__.split(".")[0] in ours
        and view.__module__ not in TOKENLESS_VIEWS
        and f"{view.__module__}.{view.__name__}" not in TOKENLESS_VIEWS
        and view.__name__ not in {"healthz"}
        and _accepts_post(view)
        and not getattr(view, "idempotent_form", False)
    ]
    assert not missing
