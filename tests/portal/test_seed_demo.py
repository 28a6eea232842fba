import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django_otp.plugins.otp_email.models import EmailDevice

from messaging.models import Conversation, Message, Notification, ReplyTemplate
from portal.accounts.models import Patient, User
from portal.audit.models import AccessLog
from portal.careteams.models import CareLink, CareTeam, Membership
from portal.management.commands.seed_demo import DEMO_PASSWORD
from records.models import Digest, Document, Measurement, News, Observation, Prescription

pytestmark = pytest.mark.django_db


def snapshot():
    return {
        "users": sorted(User.objects.values_list("email", "role", "password", "first_name")),
        "patients": sorted(Patient.objects.values_list("ins", "first_name", "last_name", "user__email")),
        "teams": sorted(CareTeam.objects.values_list("name", "kind")),
        "memberships": sorted(Membership.objects.values_list("team__name", "user__email")),
        "links": sorted(CareLink.objects.values_list("patient__ins", "team__name", "status")),
        "conversations": sorted(Conversation.objects.values_list("patient__ins", "subject", "status")),
        "messages": sorted(Message.objects.values_list("conversation__subject", "body")),
        "observations": sorted(
            Observation.objects.values_list("patient__ins", "loinc", "value", "report__collected_on")
        ),
        "prescriptions": sorted(Prescription.objects.values_list("patient__ins", "medication", "start_date")),
        "measurements": Measurement.objects.count(),
        "documents": sorted(Document.objects.values_list("patient__ins", "title", "sha256")),
        "devices": sorted(EmailDevice.objects.values_list("user__email", "name", "confirmed")),
        "reads": sorted(AccessLog.objects.values_list("patient__ins", "actor__email", "action", "target")),
        "reply_templates": sorted(ReplyTemplate.objects.values_list("team__name", "title")),
    }


def test_seed_demo_is_deterministic_and_idempotent(capsys):
    call_command("seed_demo")
    first = snapshot()
    call_command("seed_demo")
    assert snapshot() == first
    assert len(first["patients"]) == 20
    assert {kind for _, kind in first["teams"]} == {"practice", "hospital", "pharmacy"}
    assert User.objects.filter(role="support").count() == 1
    demo_logins = User.objects.filter(email__endswith="@demo.carnet.example")
    assert EmailAddress.objects.filter(user__in=demo_logins, verified=True, primary=True).count() == demo_logins.count()
    assert {status for _, _, status in first["conversations"]} == {"open", "closed"}
    assert not Notification.objects.filter(status="pending").exists()
    # Demo history is nobody's news: no digest email; one "new" document to show.
    assert not Digest.objects.filter(status="pending").exists()
    assert list(News.objects.unseen().values_list("patient__first_name", "kind")) == [("Camille", "document")]
    # Every page shows something: Camille's access history, each team's canned replies.
    assert {action for _, email, action, _ in first["reads"] if email.startswith(("claire.", "sophie."))} >= {
        "view_record", "view_document",
    }  # fmt: skip
    assert {team for team, _ in first["reply_templates"]} >= {"Cabinet médical des Lilas"}
    # Camille is her daughter Léa's parent: the record switcher offers both records.
    from portal import access

    camille = User.objects.get(email="camille.durand@demo.carnet.example")
    assert [(record.patient.first_name, record.kind) for record in access.records_of(camille)] == [
        ("Camille", "self"),
        ("Léa", "parent"),
    ]
    # Demo identities are INS test identities.
    assert set(Patient.objects.values_list("ins_oid", flat=True)) == {"1.2.250.1.213.1.4.10"}
    out = capsys.readouterr().out
    assert DEMO_PASSWORD in out
    assert "camille.durand@" in out


def test_demo_identifiers_are_well_formed_nirs():
    call_command("seed_demo")
    for ins in Patient.objects.values_list("ins", flat=True):
        assert len(ins) == 15 and ins.isdigit()
        assert int(ins[-2:]) == 97 - int(ins[:13]) % 97


def test_the_demo_data_agrees_with_itself():
    """What a reader of the demo sees holds together: a test named in an access history
    is one of the patient's results; an inhaler is inhaled."""
    call_command("seed_demo")
    for patient_id, target in AccessLog.objects.filter(action=AccessLog.Action.VIEW_RESULTS).values_list(
        "patient_id", "target"
    ):
        assert Observation.objects.filter(patient_id=patient_id, name=target).exists(), target
    for medication, route in Prescription.objects.values_list("medication", "route"):
        assert (route == "inhaled") == ("inhalateur" in medication), medication


def test_every_printed_demo_login_signs_in_and_lands_home(client, capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "code by email" in out and "console" in out
    emails = [line.split()[1] for line in out.splitlines() if "@" in line]
    assert len(emails) == 5
    for email in emails:
        signed_in = client.post(reverse("account_login"), {"login": email, "password": DEMO_PASSWORD})
        assert signed_in.status_code == 302, email
        # The second factor, as the demo user passes it: a code sent by email.
        verify = client.get("/", follow=True)
        assert verify.request["PATH_INFO"] == reverse("accounts:verify"), email
        client.post(reverse("accounts:verify"), {"action": "send-email"})
        code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
        home = client.post(reverse("accounts:verify"), {"kind": "email", "code": code, "next": "/"}, follow=True)
        assert home.status_code == 200, email
        assert home.request["PATH_INFO"] != reverse("accounts:verify"), email
        client.logout()
