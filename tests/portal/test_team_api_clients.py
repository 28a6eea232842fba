"""A manager of a care team registers the team's software for the FHIR API, gives it a
new secret and revokes it, from the team's settings; other members read the list; any
other team's clients, and anyone else, get 404. Every change is kept in the trail."""

import re
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from fhir_api import services
from fhir_api.models import ApiClient, ApiClientEvent
from portal.careteams.models import Membership
from tests.factories import ClinicianFactory
from tests.portal.test_double_submit import at_once, signed_in_clients

SCOPE = "system/DocumentReference.c"


@pytest.fixture
def manager(team):
    user = ClinicianFactory(first_name="Marc", last_name="Durand")
    Membership.objects.create(team=team, user=user, is_manager=True)
    return user


@pytest.fixture
def other_manager(other_team):
    user = ClinicianFactory(first_name="Hélène", last_name="Roux")
    Membership.objects.create(team=other_team, user=user, is_manager=True)
    return user


@pytest.fixture
def registered(team, support):
    return services.register_client(team=team, name="Logiciel du cabinet", scopes=[SCOPE], created_by=support)[0]


def _register(client, team, name="Logiciel du cabinet"):
    return client.post(
        reverse("careteams:new_api_client", args=[team.pk]),
        {"name": name, "scopes": [SCOPE], "form_token": str(uuid.uuid4())},
    )


def _change(client, api_client, action):
    url = reverse("careteams:change_api_client", args=[api_client.pk, action])
    return client.post(url, {"form_token": str(uuid.uuid4())})


# Who may do what with the team's clients: the list (on the settings page), register,
# rotate, revoke. Everyone else gets 404, as for "not yours".
WHO = {
    "manager": (200, True),
    "member": (200, False),
    "other team's manager": (404, False),
    "patient": (404, False),
    "support": (404, False),
}


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("action", ["list", "register", "rotate", "revoke", "secret page"])
def test_who_sees_and_changes_a_teams_clients(
    who, action, client, login, team, registered, manager, clinician, other_manager, patient, support
):
    user = {"manager": manager, "member": clinician, "other team's manager": other_manager, "patient": patient,
            "support": support}[who]  # fmt: skip
    listing, changes = WHO[who]
    login(user)
    if action == "list":
        answer = client.get(reverse("careteams:team_settings", args=[team.pk]))
        assert answer.status_code == listing
        if listing == 200:
            page = answer.content.decode()
            assert "Logiciel du cabinet" in page and registered.client_id in page
            assert (reverse("careteams:change_api_client", args=[registered.pk, "revoke"]) in page) is changes
            assert (reverse("careteams:new_api_client", args=[team.pk]) in page) is changes
        return
    if action == "register":
        answer = _register(client, team, name="Autre logiciel")
        assert ApiClient.objects.filter(name="Autre logiciel").exists() is changes
    elif action == "secret page":
        answer = client.get(reverse("careteams:api_client_secret", args=[registered.pk]))
    else:
        answer = _change(client, registered, action)
        registered.refresh_from_db()
        assert (registered.secret_rotated_at is not None if action == "rotate" else registered.is_revoked) is changes
    assert answer.status_code == ((302 if action != "secret page" else 200) if changes else 404)


def test_the_secret_is_shown_once_and_the_trail_keeps_who(client, login, team, manager):
    login(manager)
    answer = _register(client, team)
    api_client = ApiClient.objects.get(team=team, name="Logiciel du cabinet")
    assert answer["Location"] == reverse("careteams:api_client_secret", args=[api_client.pk])
    page = client.get(answer["Location"]).content.decode()
    client_id, secret = re.findall(r'<code class="break">([^<]+)</code>', page)
    assert client_id == api_client.client_id
    assert len(secret) > 30 and api_client.application.client_secret != secret  # only its hash is kept
    again = client.get(answer["Location"]).content.decode()
    assert secret not in again and "n’est plus disponible" in again

    rotated = _change(client, api_client, "rotate")
    new_secret = client.get(rotated["Location"]).content.decode()
    assert secret not in new_secret and len(re.findall(r'<code class="break">', new_secret)) == 2
    assert _change(client, api_client, "revoke")["Location"] == reverse("careteams:team_settings", args=[team.pk])
    trail = ApiClientEvent.objects.filter(client=api_client).order_by("pk")
    assert [(e.action, e.actor) for e in trail] == [("registered", manager), ("rotated", manager), ("revoked", manager)]


def test_supports_changes_are_in_the_trail_too(client, login, registered, support):
    login(support)
    client.post(reverse("support:change_api_client", args=[registered.pk, "rotate"]))
    client.post(reverse("support:change_api_client", args=[registered.pk, "revoke"]))
    trail = ApiClientEvent.objects.filter(client=registered).order_by("pk")
    assert [(e.action, e.actor) for e in trail] == [("registered", support), ("rotated", support), ("revoked", support)]


def test_a_taken_name_is_refused(client, login, team, manager, registered):
    login(manager)
    answer = _register(client, team)
    assert answer.status_code == 200 and ApiClient.objects.filter(team=team).count() == 1
    assert "déjà un client" in answer.content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["register", "rotate", "revoke"])
def test_the_same_form_sent_twice_at_once_acts_once(action, postgres, login, team, manager, support):
    registered = services.register_client(team=team, name="Ancien", scopes=[SCOPE], created_by=support)[0]
    if action == "register":
        url, data = reverse("careteams:new_api_client", args=[team.pk]), {"name": "Nouveau", "scopes": [SCOPE]}
    else:
        url, data = reverse("careteams:change_api_client", args=[registered.pk, action]), {}
    token = str(uuid.uuid4())
    clients = signed_in_clients(login, manager)
    answers = at_once([lambda c=c: c.post(url, {**data, "form_token": token}) for c in clients])
    assert [a.status_code for a in answers] == [302, 302]
    assert answers[0]["Location"] == answers[1]["Location"]
    assert ApiClientEvent.objects.filter(actor=manager).count() == 1
    if action != "revoke":  # the secret page shows the secret to one of the two answers only
        shown = [Client.get(c, answers[0]["Location"]).content.decode() for c in clients]
        assert sum("n’est plus disponible" not in page for page in shown) == 1


def test_the_list_reads_in_english(client, login, team, clinician, registered, settings):
    login(clinician)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("careteams:team_settings", args=[team.pk])).content.decode()
    assert "API clients" in page and "Never" in page


@pytest.mark.parametrize("who", ["manager", "support"])
@pytest.mark.parametrize("action", ["rotate", "revoke"])
def test_a_new_secret_or_a_revocation_is_asked_first(client, login, team, manager, support, registered, who, action):
    """The cards' buttons open a page that says what follows (the software stops at
    once) and acts only once confirmed; a revoked client has nothing left to ask."""
    login(manager if who == "manager" else support)
    route = "careteams:change_api_client" if who == "manager" else "support:change_api_client"
    url = reverse(route, args=[registered.pk, action])
    listing = reverse("careteams:team_settings", args=[team.pk]) if who == "manager" else reverse("support:api_clients")
    assert f'href="{url}"' in client.get(listing).content.decode()  # a link to the question, not a form acting
    secret = registered.application.client_secret
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert ("Révoquer «\u00a0" if action == "revoke" else "Un nouveau secret pour «\u00a0") in text
    assert "cessent aussitôt" in text or "cesse aussitôt" in text
    registered.refresh_from_db()
    registered.application.refresh_from_db()
    assert not registered.is_revoked and registered.application.client_secret == secret  # nothing done yet
    client.post(url, {"form_token": str(uuid.uuid4())})
    registered.refresh_from_db()
    assert registered.is_revoked == (action == "revoke")
    if action == "revoke":
        assert client.get(url).status_code == 302  # nothing left to ask
