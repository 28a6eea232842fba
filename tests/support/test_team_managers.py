"""Support makes a clinician a manager of one of their care teams, or no longer one,
with a reason kept in the support trail (one row however often the form is sent)."""

import uuid

import pytest
from django.urls import reverse

from portal.careteams.models import Membership
from portal.support.models import SupportAction
from tests.factories import ClinicianFactory

REASON = "Demande écrite du médecin coordinateur"


def act(client, account, action, **data):
    return client.post(
        reverse("support:act", args=[account.pk, action]), {"reason": REASON, "request_key": str(uuid.uuid4()), **data}
    )


def is_manager(user, team):
    return Membership.objects.get(user=user, team=team).is_manager


def test_support_makes_a_manager_and_removes_it_with_a_reason(client, login, support, clinician, team):
    login(support)
    act(client, clinician, "make_manager", team=team.pk)
    assert is_manager(clinician, team)
    page = client.get(reverse("support:account", args=[clinician.pk])).content.decode()
    assert f"{team.name} (responsable)" in page
    assert reverse("support:act", args=[clinician.pk, "make_manager"]) not in page  # nothing left to offer
    act(client, clinician, "remove_manager", team=team.pk)
    assert not is_manager(clinician, team)
    rows = SupportAction.objects.order_by("at", "pk")
    assert [(r.action, r.detail, r.reason, r.agent, r.account) for r in rows] == [
        ("make_manager", team.name, REASON, support, clinician),
        ("remove_manager", team.name, REASON, support, clinician),
    ]


def test_the_same_confirmation_sent_twice_acts_once(client, login, support, clinician, team):
    login(support)
    key = str(uuid.uuid4())
    for _ in range(2):
        act(client, clinician, "make_manager", team=team.pk, request_key=key)
    assert SupportAction.objects.filter(action="make_manager").count() == 1


def test_only_the_clinicians_own_teams_are_offered(client, login, support, clinician, team, other_team):
    login(support)
    url = reverse("support:act", args=[clinician.pk, "make_manager"])
    assert list(client.get(url).context["form"].fields["team"].queryset) == [team]
    answer = act(client, clinician, "make_manager", team=other_team.pk)  # not a member
    assert answer.status_code == 200 and 'class="errorlist"' in answer.content.decode()
    assert not Membership.objects.filter(user=clinician, team=other_team).exists()
    assert client.get(reverse("support:act", args=[clinician.pk, "remove_manager"])).context["form"].fields[
        "team"
    ].queryset.count() == 0  # fmt: skip


@pytest.mark.parametrize("who", ["clinician", "manager", "patient"])
def test_only_support_names_managers(who, client, login, team, clinician, patient):
    manager = ClinicianFactory()
    Membership.objects.create(team=team, user=manager, is_manager=True)
    login({"clinician": clinician, "manager": manager, "patient": patient}[who])
    assert act(client, clinician, "make_manager", team=team.pk).status_code == 404
    assert not is_manager(clinician, team)


def test_the_actions_read_in_english(client, login, support, clinician, team, settings):
    login(support)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("support:account", args=[clinician.pk])).content.decode()
    assert "Make a manager of a care team" in page
    Membership.objects.filter(user=clinician).update(is_manager=True)
    page = client.get(reverse("support:account", args=[clinician.pk])).content.decode()
    assert "Remove as a manager of a care team" in page and f"{team.name} (manager)" in page
