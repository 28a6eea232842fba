"""Support registers a team's software, sees its secret once, rotates and revokes it."""

import pytest
from django.conf import settings
from django.utils import timezone

from fhir_api.models import ApiClient


@pytest.fixture
def console(login, support):
    return login(support)


def test_support_registers_a_client_and_sees_the_secret_once(console, team):
    response = console.post(
        "/support/api-clients/new/",
        {"team": team.pk, "name": "Logiciel du cabinet", "scopes": ["system/DocumentReference.c"]},
        follow=True,
    )

    assert response.status_code == 200
    client = ApiClient.objects.get()
    secret = response.context["secret"]
    assert secret in response.content.decode() and client.client_id in response.content.decode()
    # Where the software connects, beside what it connects with.
    assert f"{settings.SITE_URL}/fhir</code>" in response.content.decode()
    assert f"{settings.SITE_URL}/fhir/token</code>" in response.content.decode()
    assert secret not in console.get(response.redirect_chain[-1][0]).content.decode()  # shown once
    assert (client.team, client.scopes) == (team, ["system/DocumentReference.c"])
    assert secret not in client.application.client_secret  # only its hash is kept
    listing = console.get("/support/api-clients/").content.decode()
    assert "Logiciel du cabinet" in listing and secret not in listing


def test_register_needs_a_scope(console, team):
    response = console.post("/support/api-clients/new/", {"team": team.pk, "name": "X"})

    assert response.status_code == 200 and not ApiClient.objects.exists()
    assert response.context["form"].errors["scopes"]


def test_rotate_shows_a_new_secret_and_revoke_ends_the_client(console, registered):
    client, old_secret = registered
    response = console.post(f"/support/api-clients/{client.pk}/rotate/", follow=True)
    new_secret = response.context["secret"]
    assert new_secret != old_secret

    console.post(f"/support/api-clients/{client.pk}/revoke/")
    client.refresh_from_db()
    assert client.is_revoked
    assert console.post(f"/support/api-clients/{client.pk}/rotate/").status_code == 404


def test_last_used_time_is_shown(console, registered):
    client, _secret = registered
    client.last_used_at = timezone.now()
    client.save(update_fields=["last_used_at"])

    assert "Jamais" not in console.get("/support/api-clients/").content.decode()


def test_clinicians_and_patients_get_404(login, clinician, patient, registered):
    client, _secret = registered
    for who in (clinician, patient):
        browser = login(who)
        assert browser.get("/support/api-clients/").status_code == 404
        assert browser.post(f"/support/api-clients/{client.pk}/revoke/").status_code == 404


def test_client_accounts_stay_out_of_the_account_search(console, registered):
    console.post("/support/", {"q": "Logiciel"})

    assert "Logiciel du cabinet" not in console.get("/support/").content.decode()


def test_the_register_form_sent_twice_makes_one_client(console, team):
    data = {"team": team.pk, "name": "Logiciel du cabinet", "scopes": ["system/DocumentReference.c"]}
    assert console.post("/support/api-clients/new/", data, follow=True).context["secret"]
    again = console.post("/support/api-clients/new/", data)

    assert ApiClient.objects.count() == 1
    assert "secret" not in again.context and again.context["form"].errors["name"]
