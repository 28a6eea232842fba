"""The support console: account state, actions with a reason, one audit row each,
never on peers, and the patient sees that support acted (not the reason)."""

import re
import uuid

import pytest
from allauth.usersessions.models import UserSession
from axes.models import AccessAttempt
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.audit.models import AccessLog, AppendOnlyError
from portal.support.models import SupportAction
from tests.conftest import second_factor_of
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


def act(client, account, action, reason="Appel du patient, identité vérifiée", key=None):
    return client.post(
        reverse("support:act", args=[account.pk, action]),
        {"reason": reason, "request_key": str(key or uuid.uuid4())},
    )


def test_account_page_shows_state_and_nothing_medical(client, login, support, patient):
    second_factor_of(patient.user)
    login(support)
    page = client.get(reverse("support:account", args=[patient.user.pk])).content.decode()
    assert patient.user.email in page
    # Not even a patient's care teams: "Service de cardiologie" would say what they are treated for.
    assert "Cabinet médical des Tilleuls" not in page
    assert "Not locked" in page or "Pas verrouillé" in page


def test_destructive_actions_stand_apart_in_a_danger_zone(client, login, support, patient):
    login(support)
    page = client.get(reverse("support:account", args=[patient.user.pk])).content.decode()
    safe, danger = page.split('class="danger-zone')
    for action in ("deactivate", "reset_second_factor", "end_sessions"):
        url = reverse("support:act", args=[patient.user.pk, action])
        assert url in danger and url not in safe
    assert reverse("support:act", args=[patient.user.pk, "change_email"]) in safe

    confirm = client.get(reverse("support:act", args=[patient.user.pk, "deactivate"])).content.decode()
    assert "button-danger" in confirm
    assert (
        "button-danger"
        not in client.get(reverse("support:act", args=[patient.user.pk, "change_email"])).content.decode()
    )


def test_deactivate_needs_a_reason_and_writes_one_audit_row(client, login, support, patient):
    login(support)
    empty = act(client, patient.user, "deactivate", reason="   ")
    assert empty.status_code == 200
    assert "Indiquez la raison de cette action." in empty.content.decode()
    patient.user.refresh_from_db()
    assert patient.user.is_active and not SupportAction.objects.exists()

    key = uuid.uuid4()
    assert act(client, patient.user, "deactivate", key=key).status_code == 302
    assert act(client, patient.user, "deactivate", key=key).status_code == 302  # double submit
    patient.user.refresh_from_db()
    assert not patient.user.is_active
    row = SupportAction.objects.get()
    assert (row.agent, row.account, row.action, row.reason) == (
        support,
        patient.user,
        "deactivate",
        "Appel du patient, identité vérifiée",
    )


def test_deactivation_ends_every_session(client, login, support, patient):
    other = login(patient, on=type(client)())
    other.get("/my/")
    assert UserSession.objects.filter(user=patient.user).exists()
    assert other.get("/my/").status_code == 200
    login(support)
    act(client, patient.user, "deactivate")
    assert other.get("/my/").status_code == 302


def test_the_session_count_is_of_sessions_still_signed_in(client, login, support, patient):
    """What support reads as active sessions is what the person's account page lists:
    a session a password change made void is not one."""

    def count():
        page = client.get(reverse("support:account", args=[patient.user.pk])).content.decode()
        return re.search(r"<dd>(\d+)</dd>", page.split("Sessions actives")[1]).group(1)

    other = login(patient, on=type(client)())
    assert other.get("/my/").status_code == 200
    login(support)
    assert count() == "1"
    patient.user.set_password("un tout nouveau mot de passe")
    patient.user.save()
    assert count() == "0"
    assert other.get("/my/").status_code == 302


def test_unlock_lifts_the_lockout(client, login, support, patient, settings):
    AccessAttempt.objects.create(
        username=patient.user.email, ip_address="127.0.0.1", user_agent="test", failures_since_start=settings.AXES_FAILURE_LIMIT,
        attempt_time=timezone.now(),
    )  # fmt: skip
    login(support)
    page = client.get(reverse("support:account", args=[patient.user.pk])).content.decode()
    assert "Verrouillé jusqu’au" in page
    act(client, patient.user, "unlock")
    assert not AccessAttempt.objects.filter(username=patient.user.email).exists()


def test_reset_second_factor_sends_the_user_to_enrolment_and_emails_them(
    client, login, support, patient, django_capture_on_commit_callbacks
):
    second_factor_of(patient.user)
    login(support)
    with django_capture_on_commit_callbacks(execute=True):
        act(client, patient.user, "reset_second_factor")
    assert not patient.user.emaildevice_set.exists()
    notice = [m for m in mail.outbox if m.to == [patient.user.email]]
    assert notice and "second facteur" in notice[-1].subject.lower()


def test_support_cannot_act_on_peers_or_superusers(client, login, support):
    peer = UserFactory(role="support")
    admin = UserFactory(role="support", is_superuser=True, is_staff=True)
    login(support)
    for target in (peer, admin):
        assert client.get(reverse("support:account", args=[target.pk])).status_code == 404
        assert act(client, target, "deactivate").status_code == 404
    assert not SupportAction.objects.exists()


def test_unknown_action_or_account_is_404(client, login, support, patient):
    login(support)
    assert act(client, patient.user, "delete_everything").status_code == 404
    assert client.get(reverse("support:account", args=[987654])).status_code == 404


def test_the_patient_sees_that_support_acted_but_not_the_reason(client, login, support, patient):
    login(support)
    act(client, patient.user, "end_sessions", reason="Téléphone volé, demande du patient")
    log = AccessLog.objects.get()
    assert (log.patient, log.action) == (patient, "account_action")
    login(patient)
    page = client.get(reverse("records:access_history")).content.decode()
    assert "Support acted on the account" in page or "Le support est intervenu sur le compte" in page
    assert "Téléphone volé" not in page


def test_audit_trail_filters_and_is_append_only(client, login, support, patient, other_patient):
    other_agent = UserFactory(role="support")
    login(support)
    act(client, patient.user, "end_sessions")
    login(other_agent)
    act(client, other_patient.user, "end_sessions")
    page = client.get(reverse("support:audit"), {"agent": support.pk})
    assert [row.account for row in page.context["page"].object_list] == [patient.user]
    row = SupportAction.objects.first()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        SupportAction.objects.all().update(reason="x")


def test_other_roles_cannot_use_the_console(client, login, patient, clinician):
    for who in (patient, clinician):
        login(who)
        for url in (
            reverse("support:home"),
            reverse("support:audit"),
            reverse("support:account", args=[patient.user.pk]),
            reverse("support:act", args=[patient.user.pk, "deactivate"]),
        ):
            assert client.get(url).status_code == 404


def test_search_by_identifier_and_constant_queries(client, login, support, patient):
    patient.ins = "284037512345678"
    patient.save(update_fields=["ins"])
    login(support)
    listed = client.post(reverse("support:home"), {"q": "2840 3751 2345 678"}, follow=True).context["page"].object_list
    assert [u.pk for u in listed] == [patient.user.pk]

    def count():
        with CaptureQueriesContext(connection) as ctx:
            client.get(reverse("support:home"))
        return len(ctx)

    count()  # the first request of a session writes to it
    few = count()
    for _ in range(10):
        PatientFactory()
    assert count() == few
