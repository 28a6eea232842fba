"""Support invites patients who have no login, creates clinician (and, for superusers,
support agent) accounts with an out-of-band code, resends invitations, changes an
account's email through verification, manages team memberships: each with a reason,
one audit row, and a clear message when the action does not apply."""

import datetime
import re
import uuid

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_email.models import EmailDevice

from portal.accounts.models import Invitation, User
from portal.audit.models import AccessLog
from portal.careteams.models import Membership
from portal.support.models import SupportAction
from tests.conftest import second_factor_of
from tests.factories import CareLinkFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "une phrase de passe assez longue"
REASON = "Appel du cabinet, identité vérifiée"


@pytest.fixture
def lea(team):
    """A patient of the team who has no login yet."""
    patient = PatientFactory(
        user=None, first_name="Léa", last_name="Martin", birth_date=datetime.date(1990, 2, 3), ins="290027512345678"
    )
    CareLinkFactory(patient=patient, team=team)
    return patient


def post(client, url, **data):
    return client.post(url, {"reason": REASON, "request_key": str(uuid.uuid4()), **data})


def act_url(account, action):
    return reverse("support:act", args=[account.pk, action])


def link_in(message):
    url = re.search(r"https?://\S+/accounts/invitation/\S+/", message.body).group(0)
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def accept(client, path, **proof):
    return client.post(path, {**proof, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})


def shown_code(client, account):
    """The verification code shown once on the account page after the action."""
    page = client.get(reverse("support:account", args=[account.pk])).content.decode()
    match = re.search(r'class="verification-code"><code>(\d{4} \d{4})</code>', page)
    return match and match.group(1)


# --- patients without a login ------------------------------------------------------


def test_support_finds_a_patient_without_login_and_invites_them(
    client, login, support, lea, django_capture_on_commit_callbacks
):
    login(support)
    for query in ("lea mar", "MARTIN", "2900 2751 2345 678"):
        listed = client.post(reverse("support:home"), {"q": query}, follow=True).context["patients"]
        assert [p.pk for p in listed] == [lea.pk]
    page = client.get(reverse("support:invite_patient", args=[lea.pk])).content.decode()
    assert "Léa Martin" in page and "1990" not in page  # the birth date is the invitee's proof, not shown

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, reverse("support:invite_patient", args=[lea.pk]), email="Lea.Martin@example.org")
    assert response.status_code == 302
    row = SupportAction.objects.get()
    assert (row.agent, row.account, row.patient, row.action, row.detail) == (
        support,
        None,
        lea,
        "invite",
        "lea.martin@example.org",
    )
    log = AccessLog.objects.exclude(action="support_view").get()
    assert (log.patient, log.action, log.target) == (lea, "account_action", str(SupportAction.Action.INVITE.label))
    (message,) = mail.outbox
    assert message.to == ["lea.martin@example.org"] and "Martin" not in message.body

    client.post(reverse("account_logout"))
    assert accept(client, link_in(message), birth_date="1990-02-03")["Location"] == reverse("accounts:enrol")
    lea.refresh_from_db()
    assert lea.user.email == "lea.martin@example.org" and lea.user.check_password(NEW_PASSWORD)
    assert EmailAddress.objects.get(user=lea.user).verified  # the link reached that address


def test_a_new_invitation_kills_the_earlier_link(client, login, support, lea, django_capture_on_commit_callbacks):
    login(support)
    url = reverse("support:invite_patient", args=[lea.pk])
    with django_capture_on_commit_callbacks(execute=True):
        post(client, url, email="lea@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, url, email="lea.martin@example.org")
    first, second = mail.outbox
    assert second.to == ["lea.martin@example.org"]
    client.post(reverse("account_logout"))
    assert accept(client, link_in(first), birth_date="1990-02-03").status_code == 410
    assert accept(client, link_in(second), birth_date="1990-02-03").status_code == 302
    assert SupportAction.objects.filter(action="invite").count() == 2


def test_inviting_needs_a_reason_and_a_valid_email(client, login, support, lea):
    login(support)
    url = reverse("support:invite_patient", args=[lea.pk])
    for data in ({"email": "lea@example.org", "reason": "  "}, {"email": "pas-une-adresse"}):
        response = post(client, url, **data)
        assert response.status_code == 200 and 'class="errorlist"' in response.content.decode()
    assert not Invitation.objects.exists() and not SupportAction.objects.exists()


def test_support_cannot_reset_the_birth_date_guesses_with_a_new_link(client, login, support, lea):
    Invitation.objects.create(
        email="lea@example.org", patient=lea, expires_at=timezone.now(), failed_attempts=Invitation.MAX_PROOF_ATTEMPTS
    )
    login(support)
    response = post(client, reverse("support:invite_patient", args=[lea.pk]), email="lea@example.org")
    page = client.get(response["Location"]).content.decode()
    assert "Trop de dates de naissance erronées" in page
    assert Invitation.objects.count() == 1 and not SupportAction.objects.exists()


def test_support_cannot_invite_to_an_address_another_account_uses(client, login, support, lea, patient):
    login(support)
    response = post(client, reverse("support:invite_patient", args=[lea.pk]), email=patient.user.email)
    assert "déjà utilisée par un autre compte" in response.content.decode()
    assert not Invitation.objects.exists() and not SupportAction.objects.exists()


def test_a_patient_with_a_login_is_not_invited_here(client, login, support, patient):
    login(support)
    url = reverse("support:invite_patient", args=[patient.pk])
    assert client.get(url).status_code == 404
    assert post(client, url, email="x@example.org").status_code == 404
    assert not Invitation.objects.exists()


def test_patient_search_query_count_does_not_grow(client, login, support):
    login(support)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            client.post(reverse("support:home"), {"q": "ma"}, follow=True)
        return len(ctx)

    PatientFactory(user=None, last_name="Marchand")
    UserFactory(last_name="Maret")
    count()
    few = count()
    for i in range(8):
        PatientFactory(user=None, last_name=f"Martin{i}")
        UserFactory(last_name=f"Mallet{i}")
    assert count() == few


# --- accounts made by support ------------------------------------------------------


def create_clinician(client, team_list, **extra):
    data = {"first_name": "Paul", "last_name": "Girard", "email": "paul.girard@example.org", **extra}
    data.setdefault("teams", [t.pk for t in team_list])
    return post(client, reverse("support:create_account", args=["clinician"]), **data)


def test_support_creates_a_clinician_who_sets_up_with_the_code_given_by_phone(
    client, login, support, team, other_team, django_capture_on_commit_callbacks
):
    login(support)
    with django_capture_on_commit_callbacks(execute=True):
        response = create_clinician(client, [team, other_team])
    paul = User.objects.get(email="paul.girard@example.org")
    assert response["Location"] == reverse("support:account", args=[paul.pk])
    assert (paul.role, paul.has_usable_password()) == ("clinician", False)
    assert set(Membership.objects.filter(user=paul).values_list("team__name", flat=True)) == {
        team.name,
        other_team.name,
    }
    row = SupportAction.objects.get()
    assert (row.account, row.action) == (paul, "create_account") and team.name in row.detail

    code = shown_code(client, paul)
    assert code and shown_code(client, paul) is None  # shown once only
    (message,) = mail.outbox
    assert message.to == [paul.email]
    assert code not in message.body and code.replace(" ", "") not in message.body  # never by email
    assert "Un compte a été créé pour vous sur Carnet" in message.body and "espace santé" not in message.body

    client.post(reverse("account_logout"))
    path = link_in(message)
    assert "Code de vérification" in client.get(path).content.decode()
    wrong = accept(client, path, code="0000 0000" if code != "0000 0000" else "1111 1111")
    assert wrong.status_code == 200 and "4 essais restants" in wrong.content.decode()
    paul.refresh_from_db()
    assert not paul.has_usable_password()

    assert accept(client, path, code=code.replace(" ", ""))["Location"] == reverse("accounts:enrol")
    paul.refresh_from_db()
    assert paul.check_password(NEW_PASSWORD)
    assert client.get(reverse("careteams:patient_list")).status_code == 302  # the second factor comes next
    client.post(reverse("account_logout"))
    assert client.get(path).status_code == 410  # single use


def test_creating_a_clinician_checks_its_fields(client, login, support, team, clinician):
    login(support)
    cases = [
        ({"email": clinician.email}, "déjà utilisée"),
        ({"email": "not an email"}, 'class="errorlist"'),
        ({"teams": []}, "au moins une équipe"),
        ({"reason": ""}, "Indiquez la raison"),
    ]
    for extra, expected in cases:
        response = create_clinician(client, [team], **extra)
        assert response.status_code == 200 and expected in response.content.decode()
    assert not User.objects.filter(role="clinician").exclude(pk=clinician.pk).exists()
    assert not SupportAction.objects.exists()


def test_resending_gives_a_new_link_and_code_and_kills_the_old(
    client, login, support, team, django_capture_on_commit_callbacks
):
    login(support)
    with django_capture_on_commit_callbacks(execute=True):
        create_clinician(client, [team])
    paul = User.objects.get(email="paul.girard@example.org")
    old_code = shown_code(client, paul)
    assert "resend_invitation" in client.get(reverse("support:account", args=[paul.pk])).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        post(client, act_url(paul, "resend_invitation"))
    new_code = shown_code(client, paul)
    assert new_code and SupportAction.objects.filter(action="resend_invitation").count() == 1
    first, second = mail.outbox
    client.post(reverse("account_logout"))
    assert accept(client, link_in(first), code=old_code).status_code == 410
    if old_code != new_code:
        assert accept(client, link_in(second), code=old_code).status_code == 200
    assert accept(client, link_in(second), code=new_code).status_code == 302


def test_resending_to_an_account_already_set_up_says_so(client, login, support, clinician):
    login(support)
    response = post(client, act_url(clinician, "resend_invitation"))
    assert response.status_code == 302
    assert "déjà configuré" in client.get(response["Location"]).content.decode()
    assert not SupportAction.objects.exists() and not Invitation.objects.exists()


def test_five_wrong_codes_end_the_invitation(client, login, support, team, django_capture_on_commit_callbacks):
    login(support)
    with django_capture_on_commit_callbacks(execute=True):
        create_clinician(client, [team])
    code = shown_code(client, User.objects.get(email="paul.girard@example.org"))
    client.post(reverse("account_logout"))
    path = link_in(mail.outbox[0])
    wrong = "1234 5678" if code != "1234 5678" else "8765 4321"
    for _ in range(4):
        assert accept(client, path, code=wrong).status_code == 200
    last = accept(client, path, code=wrong)
    assert last.status_code == 410 and "Trop de tentatives" in last.content.decode()
    assert accept(client, path, code=code).status_code == 410
    assert not User.objects.get(email="paul.girard@example.org").has_usable_password()


def test_only_a_superuser_manages_support_agents(client, login, support, django_capture_on_commit_callbacks):
    url = reverse("support:create_account", args=["support"])
    data = {"first_name": "Inès", "last_name": "Roux", "email": "ines.roux@example.org"}
    login(support)
    assert client.get(url).status_code == 404
    assert post(client, url, **data).status_code == 404
    assert not User.objects.filter(email="ines.roux@example.org").exists()
    assert "support/accounts/new/support/" not in client.get(reverse("support:home")).content.decode()

    boss = UserFactory(role="support", is_superuser=True)
    other_boss = UserFactory(role="support", is_superuser=True)
    login(boss)
    with django_capture_on_commit_callbacks(execute=True):
        post(client, url, **data)
    ines = User.objects.get(email="ines.roux@example.org")
    assert ines.role == "support" and not ines.is_superuser and not ines.is_staff
    assert shown_code(client, ines)
    post(client, act_url(support, "deactivate"))
    support.refresh_from_db()
    assert not support.is_active
    assert client.get(reverse("support:account", args=[other_boss.pk])).status_code == 404
    assert post(client, act_url(other_boss, "deactivate")).status_code == 404
    assert [r.action for r in SupportAction.objects.order_by("at")] == ["create_account", "deactivate"]

    login(ines)  # a new agent is an ordinary one
    assert client.get(reverse("support:account", args=[support.pk])).status_code == 404


# --- email changes -----------------------------------------------------------------


def test_changing_the_email_needs_the_new_address_verified(
    client, login, support, patient, django_capture_on_commit_callbacks
):
    old = patient.user.email
    second_factor_of(patient.user)  # codes by email, to the account's address
    login(support)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, act_url(patient.user, "change_email"), email="Camille.Neuve@example.org")
    assert response.status_code == 302
    patient.user.refresh_from_db()
    assert patient.user.email == old  # not before the holder confirms
    row = SupportAction.objects.get()
    assert (row.action, row.detail) == ("change_email", "camille.neuve@example.org")
    assert AccessLog.objects.get().action == "account_action"
    started = [m for m in mail.outbox if m.to == [old]]
    assert started and "changement" in started[0].subject.lower()
    (confirmation,) = [m for m in mail.outbox if m.to == ["camille.neuve@example.org"]]
    assert (
        "en attente de confirmation" in client.get(reverse("support:account", args=[patient.user.pk])).content.decode()
    )

    client.post(reverse("account_logout"))
    key_url = re.search(r"https?://\S+(/accounts/confirm-email/\S+/)", confirmation.body).group(1)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(key_url)
    patient.user.refresh_from_db()
    assert patient.user.email == "camille.neuve@example.org"
    assert list(EmailAddress.objects.filter(user=patient.user).values_list("email", flat=True)) == [
        "camille.neuve@example.org"
    ]
    assert [m.to for m in mail.outbox] == [[old]]  # the notice goes to the old address
    # The second factor did not move with the address: sign-in codes still go to the old one.
    assert [d.email for d in EmailDevice.objects.filter(user=patient.user)] == [old]
    assert "contactez immédiatement l’assistance Carnet" in started[0].body


def test_email_change_refuses_bad_addresses(client, login, support, patient, other_patient):
    login(support)
    cases = [
        (patient.user.email.upper(), "déjà l’adresse"),
        (other_patient.user.email, "déjà utilisée"),
        ("pas-une-adresse", 'class="errorlist"'),
    ]
    for email, expected in cases:
        response = post(client, act_url(patient.user, "change_email"), email=email)
        assert response.status_code == 200
        assert expected in response.content.decode(), email
    assert not SupportAction.objects.exists()
    assert not EmailAddress.objects.filter(verified=False).exists()


# --- memberships -------------------------------------------------------------------


def test_memberships_are_added_and_removed_with_a_reason(client, login, support, clinician, team, other_team):
    login(support)
    form = client.get(act_url(clinician, "add_membership")).context["form"]
    assert list(form.fields["team"].queryset) == [other_team]  # only teams they are not in
    post(client, act_url(clinician, "add_membership"), team=other_team.pk)
    assert set(Membership.objects.filter(user=clinician).values_list("team", flat=True)) == {team.pk, other_team.pk}
    post(client, act_url(clinician, "remove_membership"), team=team.pk)
    assert list(Membership.objects.filter(user=clinician).values_list("team", flat=True)) == [other_team.pk]
    rows = SupportAction.objects.order_by("at")
    assert [(r.action, r.detail) for r in rows] == [
        ("add_membership", other_team.name),
        ("remove_membership", team.name),
    ]
    again = post(client, act_url(clinician, "remove_membership"), team=team.pk)
    assert again.status_code == 200 and 'class="errorlist"' in again.content.decode()  # not a choice any more
    assert SupportAction.objects.count() == 2


def test_only_membership_actions_with_a_team_to_choose_are_offered(client, login, support, clinician, team):
    login(support)
    account_page = reverse("support:account", args=[clinician.pk])
    page = client.get(account_page).content.decode()  # a member of the only team
    assert act_url(clinician, "remove_membership") in page and act_url(clinician, "add_membership") not in page
    Membership.objects.filter(user=clinician).delete()
    page = client.get(account_page).content.decode()
    assert act_url(clinician, "add_membership") in page and act_url(clinician, "remove_membership") not in page


def test_membership_actions_are_for_clinicians_only(client, login, support, patient, team):
    login(support)
    page = client.get(reverse("support:account", args=[patient.user.pk])).content.decode()
    assert "add_membership" not in page
    response = post(client, act_url(patient.user, "add_membership"), team=team.pk)
    assert "Seuls les soignants" in client.get(response["Location"]).content.decode()
    assert not Membership.objects.filter(user=patient.user).exists() and not SupportAction.objects.exists()


# --- actions that no longer apply --------------------------------------------------


def test_actions_that_do_not_apply_say_so_and_change_nothing(client, login, support, patient):
    login(support)
    post(client, act_url(patient.user, "deactivate"))
    for action, message in [
        ("deactivate", "déjà désactivé"),
        ("unlock", "n’est pas verrouillé"),
        ("reset_second_factor", "pas encore de second facteur"),
    ]:
        response = post(client, act_url(patient.user, action))
        assert message in client.get(response["Location"]).content.decode(), action
    assert [r.action for r in SupportAction.objects.all()] == ["deactivate"]


def test_acting_on_an_account_deleted_meanwhile_says_so(client, login, support):
    gone = UserFactory()
    url = act_url(gone, "end_sessions")
    login(support)
    assert client.get(url).status_code == 200
    gone.delete()
    response = post(client, url)
    assert response["Location"] == reverse("support:home")
    assert "n’existe plus" in client.get(reverse("support:home")).content.decode()


def test_new_console_pages_are_404_to_other_roles(client, login, patient, clinician, lea, team):
    second_factor_of(clinician)
    for who in (patient, clinician):
        login(who)
        for url in (
            reverse("support:create_account", args=["clinician"]),
            reverse("support:invite_patient", args=[lea.pk]),
            act_url(clinician, "change_email"),
        ):
            assert client.get(url).status_code == 404
            assert post(client, url, email="x@example.org").status_code == 404
    assert not SupportAction.objects.exists() and not Invitation.objects.exists()


def test_a_deactivated_pending_account_cannot_be_set_up(
    client, login, support, team, django_capture_on_commit_callbacks
):
    login(support)
    with django_capture_on_commit_callbacks(execute=True):
        create_clinician(client, [team])
    paul = User.objects.get(email="paul.girard@example.org")
    code = shown_code(client, paul)
    post(client, act_url(paul, "deactivate"))
    response = post(client, act_url(paul, "resend_invitation"))
    assert "réactivez-le d’abord" in client.get(response["Location"]).content.decode()
    client.post(reverse("account_logout"))
    assert accept(client, link_in(mail.outbox[0]), code=code).status_code == 410
    paul.refresh_from_db()
    assert not paul.has_usable_password()


def test_a_creation_sent_twice_makes_one_account(client, login, support, team):
    login(support)
    key = str(uuid.uuid4())
    first = create_clinician(client, [team], request_key=key)
    again = create_clinician(client, [team], request_key=key)
    assert first.status_code == 302
    assert again.status_code == 200 and "déjà utilisée" in again.content.decode()  # the address is now taken
    assert User.objects.filter(email="paul.girard@example.org").count() == 1
    assert SupportAction.objects.count() == 1 and Invitation.objects.count() == 1


def test_an_invitation_sent_twice_acts_once(client, login, support, lea, django_capture_on_commit_callbacks):
    login(support)
    key = str(uuid.uuid4())
    url = reverse("support:invite_patient", args=[lea.pk])
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            post(client, url, email="lea@example.org", request_key=key)
    assert Invitation.objects.count() == 1 and SupportAction.objects.count() == 1 and len(mail.outbox) == 1
    assert "déjà été effectuée" in client.get(url).content.decode()


def test_actions_read_as_commands_and_the_trail_as_what_was_done(client, login, support, patient):
    login(support)
    page = client.get(reverse("support:account", args=[patient.user.pk])).content.decode()
    for command in ["Désactiver le compte…", "Réinitialiser le second facteur…", "Fermer toutes les sessions…"]:
        assert command in page
    confirm = client.get(act_url(patient.user, "end_sessions")).content.decode()
    assert "<h1>Fermer toutes les sessions</h1>" in confirm
    done = post(client, act_url(patient.user, "end_sessions"))
    page = client.get(done["Location"]).content.decode()
    assert "Fermer toutes les sessions : c’est fait." in page
    assert "A fermé toutes les sessions" in page  # the recent support actions


def test_a_support_action_shows_once_in_the_holders_security_events(client, login, support, patient):
    second_factor_of(patient.user)
    login(support)
    post(client, act_url(patient.user, "reset_second_factor"))
    login(patient)
    page = client.get(reverse("accounts:security")).content.decode()
    assert page.count("A réinitialisé le second facteur") == 1
    assert "Seconds facteurs réinitialisés par le support" not in page
