"""Every response that carries a patient's data to someone other than the patient is
written to the access log: a walk over every URL pattern of the project.

Each route of Carnet's own apps is listed below, either with the item it serves a
clinician of the patient's care team, or with the reason it serves nothing of a
record to anyone but the patient. A new route that is in neither list fails the
walk: whoever adds it says which it is.
"""

import datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLResolver, get_resolver, reverse

from messaging import services as messaging_services
from portal.audit.models import AccessLog
from portal.careteams.models import Membership
from records import services
from records.models import Measurement, Prescription
from tests.factories import CareLinkFactory, CareTeamFactory
from tests.records.conftest import PNG

pytestmark = pytest.mark.django_db

# fhir_api's reads are token calls, not session routes: their access-log rows are tested
# in tests/fhir_api (search, read, retrieve).
OWN_APPS = ("portal", "records", "messaging", "agenda")

# Routes that serve a clinician some of a patient's data: (route, what its arguments are, query).
SERVES_A_RECORD = {
    "careteams:patient_detail": ("patient", {}),
    "careteams:patient_documents": ("patient", {}),
    "careteams:patient_prescriptions": ("patient", {}),
    "careteams:patient_results": ("patient", {}),
    "careteams:invite_patient": ("patient_without_login", {}),
    "records:document": ("document", {}),
    "records:download": ("document", {}),
    "records:preview": ("document", {}),
    "records:clinician_upload": ("patient", {}),
    "records:add_prescription": ("patient", {}),
    "records:add_lab_report": ("patient", {}),
    "records:observation_history": ("observation", {}),
    "records:measurement_history": ("measurement", {}),
    "messaging:conversation": ("conversation", {}),
    "messaging:thread": ("conversation", {"after": "0"}),
    "messaging:attachment": ("attachment", {}),
    "messaging:team_inbox": (None, {}),
    "messaging:team_new": ("patient", {}),
    "careteams:end_link": ("link", {}),
    "records:stop_prescription": ("prescription", {}),
    "records:replace_prescription": ("prescription", {}),
    "careteams:add_parent": ("patient", {}),
    "agenda:book": ("patient", {}),
    "agenda:edit": ("appointment", {}),
    "agenda:cancel": ("appointment", {}),
    "agenda:team_day": (None, {"day": "2026-10-25"}),
    "agenda:team_week": (None, {"day": "2026-10-21"}),
    "records:withdraw_document": ("document", {}),
    "records:replace_document": ("document", {}),
    "records:correct_observation": ("observation", {}),
    "records:clinician_add_profile_entry": ("patient_allergy", {}),
    "records:withdraw_profile_entry": ("measurement_kind", {}),
}

# Patient-side pages serve the record one is in: one's own (not logged), or one acted for,
# whose reads are logged (tests/portal/test_representation.py).
OWN_OR_REPRESENTED = "the patient's own, or the record they act for (then logged)"

# Routes that serve nothing of a record to anyone but the patient, and why.
# fmt: off
SERVES_NO_RECORD = {
    "home": "a redirect by role",
    "healthz": "service health",
    **{name: "a public page about Carnet" for name in ("help", "privacy", "terms", "accessibility")},
    "contact": "the contact form: an account problem, sent to support",
    "contact_sent": "the contact form's confirmation",
    "terms_accept": "the terms of use, to accept",
    "careteams:patient_list": "the team's own roster: names and birth dates, not the record (see README)",
    "careteams:register_patient": "a blank form; the records it offers as the same person are logged as found",
    "messaging:assign": "POST, answers with a redirect",
    "messaging:status": "POST, answers with a redirect",
    "messaging:set_confidential": "POST, answers with a redirect",
    "records:set_confidential": "POST, answers with a redirect",
    "representation:switch": "POST, answers with a redirect",
    "representation:end_helper": "POST, answers with a redirect",
    "representation:cancel_invitation": "POST, answers with a redirect",
    "representation:helpers": "the holder's own: who acts for them, on what, until when",
    "representation:accept": "an invitation: who invites, which parts, until when; nothing of the record",
    "support:representations": "support sees who represents whom, never the record; its actions are in the trail",
    "support:end_representation": "support sees who represents whom, never the record; its actions are in the trail",
    "messaging:reply_templates": "the team's own templates",
    "messaging:delete_reply_template": "the team's own templates",
    "messaging:preferences": OWN_OR_REPRESENTED,
    "messaging:inbox": OWN_OR_REPRESENTED,
    "messaging:new": OWN_OR_REPRESENTED,
    "messaging:save_attachment": OWN_OR_REPRESENTED,
    "patient_home": OWN_OR_REPRESENTED,
    "exports:page": OWN_OR_REPRESENTED,
    "exports:list": OWN_OR_REPRESENTED,
    "exports:download": OWN_OR_REPRESENTED,
    "careteams:team_settings": "the team's own settings",
    "records:document_status": "whether a document is still being processed; the page it reloads is logged",
    **{
        f"careteams:{name}": "the team's own API clients: names, scopes and times, never the record"
        for name in ("new_api_client", "change_api_client", "api_client_secret")
    },
    **{
        f"agenda:{name}": OWN_OR_REPRESENTED
        for name in ("mine", "ics", "patient_cancel", "reschedule")
    },
    "agenda:feed_settings": "the holder's own calendar address (404 to a representative)",
    "agenda:feed": "the patient's own appointments, to the holder of their secret address (no session)",
    **{
        f"records:{name}": OWN_OR_REPRESENTED
        for name in (
            "documents", "upload", "care_teams", "block_team", "block_clinician", "access_history", "set_hidden",
            "delete", "prescriptions", "request_renewal", "results", "profile", "add_profile_entry",
            "delete_profile_entry", "report_access", "record_history", "comment_profile_entry",
        )
    },
    **{
        f"support:{name}": "support sees identity and account state, never the record; its actions are in the trail"
        for name in ("home", "create_account", "account", "act", "invite_patient", "audit", "register_patient")
    },
    **{
        f"support:{name}": "merging duplicates: identities, and what moves as counts by kind, never the items"
        for name in ("merge_patient", "confirm_merge")
    },
    **{
        f"support:{name}": "a reported access: who, as what, which team, when, which kind; never what was read"
        for name in ("reports", "report")
    },
    **{
        f"support:{name}": "messages to support from the contact form: about accounts, never the record"
        for name in ("support_requests", "support_request")
    },
    **{
        f"support:{name}": "care teams' API clients: names, scopes and times, never the record"
        for name in ("api_clients", "new_api_client", "change_api_client", "api_client_secret")
    },
    **{
        f"accounts:{name}": "the signed-in person's own account"
        for name in (
            "verify", "enrol", "enrol_totp", "enrol_email", "backup_codes", "backup_codes_download", "security",
            "accept_invitation", "remove_device", "regenerate_backup_codes", "end_session", "end_other_sessions",
            "notice_preferences", "enrol_passkey", "rename_passkey", "remove_passkey",
        )
    },
    **{
        f"accounts:{name}": "a passkey ceremony of the signed-in person's own (JSON: options, then a signed answer)"
        for name in ("passkey_register_begin", "passkey_register_complete", "passkey_verify_begin",
                     "passkey_verify_complete")
    },
}
# fmt: on


def own_routes(patterns=None, namespace=None):
    """The names of every URL pattern whose view is in Carnet's own apps."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, [namespace, pattern.namespace])) or None
            yield from own_routes(pattern.url_patterns, inner)
        elif pattern.callback.__module__.split(".")[0] in OWN_APPS:
            yield f"{namespace}:{pattern.name}" if namespace else pattern.name


def test_every_route_says_whether_it_serves_a_record():
    routes = set(own_routes())
    assert len(routes) > 50
    assert not routes - SERVES_A_RECORD.keys() - SERVES_NO_RECORD.keys(), "new routes: say what they serve"
    assert not SERVES_A_RECORD.keys() & SERVES_NO_RECORD.keys()
    assert not (SERVES_A_RECORD.keys() | SERVES_NO_RECORD.keys()) - routes, "listed routes that no longer exist"


@pytest.fixture
def items(patient, clinician, team, django_capture_on_commit_callbacks, settings, tmp_path):
    """One item of every kind a clinician of the patient's team can read."""
    from tests.factories import AppointmentFactory, CareLinkFactory, PatientFactory

    settings.MEDIA_ROOT = tmp_path / "media"
    with django_capture_on_commit_callbacks(execute=True):
        document = services.upload_document(
            author=clinician, patient=patient, team=team, title="Compte rendu", category="report",
            upload=SimpleUploadedFile("cr.png", PNG, content_type="image/png"), care_date=datetime.date(2026, 1, 1),
        )  # fmt: skip
        report = services.add_lab_report(
            author=clinician, team=team, patient=patient, title="Bilan", collected_on=datetime.date(2026, 1, 1),
            observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}],
        )  # fmt: skip
        conversation = messaging_services.start_conversation(
            author=patient.user, patient=patient, team=team, subject="Question", body="Bonjour", kind="question",
            attachments=[SimpleUploadedFile("photo.png", PNG, content_type="image/png")],
        )  # fmt: skip
    prescription = Prescription.objects.create(
        patient=patient, medication="Ramipril", dosage="1", frequency="1/j", start_date=datetime.date(2026, 1, 1),
        prescriber=clinician, team=team,
    )  # fmt: skip
    appointment = AppointmentFactory(
        patient=patient, team=team, created_by=clinician,
        starts_at=datetime.datetime(2026, 10, 25, 10, 0, tzinfo=datetime.UTC),
    )  # fmt: skip
    measurement = Measurement.objects.create(
        patient=patient, author=clinician, team=team, kind="weight", value=70, measured_on=datetime.date(2026, 1, 1)
    )
    without_login = PatientFactory(user=None)
    CareLinkFactory(patient=without_login, team=team)
    return {
        None: ([], patient),
        "patient": ([patient.pk], patient),
        "patient_allergy": ([patient.pk, "allergy"], patient),
        "patient_without_login": ([without_login.pk], without_login),
        "document": ([document.pk], patient),
        "observation": ([report.observations.get().pk], patient),
        "measurement": ([measurement.pk], patient),
        "measurement_kind": (["measurement", measurement.pk], patient),
        "conversation": ([conversation.pk], patient),
        "attachment": ([conversation.messages.get().attachments.get().pk], patient),
        "link": ([patient.care_links.get(team=team).pk], patient),
        "prescription": ([prescription.pk], patient),
        "appointment": ([appointment.pk], patient),
    }


@pytest.mark.parametrize("route", sorted(SERVES_A_RECORD))
def test_every_response_carrying_a_record_to_a_clinician_is_logged(client, login, clinician, items, route):
    kind, query = SERVES_A_RECORD[route]
    args, patient = items[kind]
    login(clinician)
    before = AccessLog.objects.filter(patient=patient, actor=clinician).count()
    response = client.get(reverse(route, args=args), query)
    assert response.status_code == 200, route
    assert AccessLog.objects.filter(patient=patient, actor=clinician).count() > before, route


def test_the_conversation_refresh_logs_only_what_it_brings(client, login, clinician, patient, items):
    """The page polls for messages after the last one it has: an empty answer carries
    nothing and is not logged; a new message is appended, announced and logged."""
    from messaging.models import Conversation

    conversation = Conversation.objects.get(pk=items["conversation"][0][0])
    login(clinician)
    page = client.get(reverse("messaging:conversation", args=[conversation.pk]))
    last = conversation.messages.last().pk
    assert f"after={last}" in page.content.decode()
    logged = AccessLog.objects.filter(actor=clinician).count()
    empty = client.get(reverse("messaging:thread", args=[conversation.pk]), {"after": last})
    assert empty.status_code == 200 and "Bonjour" not in empty.content.decode()
    assert AccessLog.objects.filter(actor=clinician).count() == logged
    messaging_services.send_message(author=patient.user, conversation=conversation, body="Encore une question")
    news = client.get(reverse("messaging:thread", args=[conversation.pk]), {"after": last})
    html = news.content.decode()
    assert "Encore une question" in html and "Bonjour" not in html
    assert 'hx-swap-oob="beforeend:#thread-list"' in html and "1 nouveau message" in html
    assert AccessLog.objects.filter(actor=clinician, action=AccessLog.Action.READ_CONVERSATION).count() == 2


def test_the_team_inbox_logs_each_conversation_it_shows(client, login, clinician, patient, items):
    login(clinician)
    client.get(reverse("messaging:team_inbox"))
    listed = AccessLog.objects.get(actor=clinician, action=AccessLog.Action.LIST_CONVERSATIONS)
    assert (listed.patient, listed.target) == (patient, "Question")


def test_a_conversation_read_is_logged_through_its_own_team(client, login, clinician, patient, team):
    """A clinician in two teams caring for the patient reads a conversation of one: the
    access history names that team (the only one the policy lets them read it through),
    not the first of their teams by name."""
    from messaging.models import Conversation

    first = CareTeamFactory(name="AAA Centre de soins")  # before ``team`` by name
    Membership.objects.create(team=first, user=clinician)
    CareLinkFactory(patient=patient, team=first)
    conversation = Conversation.objects.create(patient=patient, team=team, subject="Question", started_by=patient.user)
    messaging_services.send_message(author=patient.user, conversation=conversation, body="Bonjour")
    login(clinician)
    client.get(reverse("messaging:conversation", args=[conversation.pk]))
    assert AccessLog.objects.get(actor=clinician, action=AccessLog.Action.READ_CONVERSATION).team == team
