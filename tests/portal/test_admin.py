"""The Django admin: superusers only, past the second factor, and no health content."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from portal.accounts.models import User
from tests.conftest import as_user, second_factor_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADMIN_URLS = ["admin:index", "admin:accounts_user_changelist", "admin:otp_email_emaildevice_changelist"]


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root@example.org", "a long enough password 42")


@pytest.fixture
def staff_agent(db):
    """A support agent who was given Django's staff flag and every permission: still not a superuser."""
    from django.contrib.auth.models import Permission

    user = UserFactory(role=User.Role.SUPPORT, is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    return user


def test_superuser_past_the_second_factor_uses_the_admin(client, login, superuser):
    login(superuser)
    for name in ADMIN_URLS:
        assert client.get(reverse(name)).status_code == 200, name
    found = client.get(reverse("admin:accounts_user_changelist"), {"q": superuser.email})
    assert found.context["cl"].result_count == 1


@pytest.mark.parametrize("who", ["staff_agent", "support", "clinician", "patient"])
def test_nobody_else_gets_in_even_with_staff_status_and_permissions(request, client, login, who):
    login(request.getfixturevalue(who))
    for name in ADMIN_URLS:
        response = client.get(reverse(name))
        assert response.status_code == 302, (who, name)
        assert response["Location"].startswith(reverse("admin:login")), (who, name)


def test_superuser_without_the_second_factor_is_sent_to_it(client, password_only_login, superuser):
    second_factor_of(superuser)
    password_only_login(superuser)
    response = client.get(reverse("admin:accounts_user_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:verify"))


def test_no_health_content_is_registered():
    registered = {model._meta.label for model in admin.site._registry}
    assert "accounts.User" in registered  # the check looks at the real registry
    health = {model._meta.label for model in apps.get_models() if model._meta.app_label in {"records", "messaging"}}
    health |= {"accounts.Patient", "audit.AccessLog", "careteams.CareLink", "support.SupportAction"}
    assert len(health) > 10
    assert not registered & health


# --- No admin page shows health content ---------------------------------------------


@pytest.fixture
def health_data(patient, clinician, team):
    """Rows of every kind of health content, about the patient and written by the clinician."""
    from messaging.models import Conversation, Message
    from portal.audit.models import AccessLog
    from records.models import Condition, Document, LabReport, Measurement, Observation, Prescription

    Document.objects.create(
        patient=patient, title="Compte rendu de cardiologie", category="report", care_date="2026-01-02",
        author=patient.user, content_type="application/pdf", size=1, sha256="0" * 64, key_id="k", file_name="f",
    )  # fmt: skip
    conversation = Conversation.objects.create(
        patient=patient, team=team, subject="Douleur thoracique la nuit", started_by=patient.user
    )
    Message.objects.create(conversation=conversation, author=patient.user, body="Depuis trois jours, au repos.")
    Condition.objects.create(patient=patient, author=patient.user, name="Diabète de type 2")
    Measurement.objects.create(patient=patient, author=patient.user, kind="weight", value=83, measured_on="2026-01-01")
    Prescription.objects.create(
        patient=patient, medication="Bisoprolol 2,5 mg", dosage="1", frequency="1/j", start_date="2026-01-01",
        prescriber=clinician, team=team,
    )  # fmt: skip
    report = LabReport.objects.create(
        patient=patient, title="Bilan lipidique", collected_on="2026-01-01", author=clinician, team=team
    )
    Observation.objects.create(
        report=report, patient=patient, loinc="2093-3", name="Cholestérol total", value=2, unit="g/L"
    )
    AccessLog.objects.create(patient=patient, actor=clinician, actor_role="clinician", action="view_record")


def health_strings():
    """What health rows say of themselves (their str and title-like fields), long enough to search for."""
    from django.apps import apps

    found = set()
    for model in apps.get_models():
        if model._meta.app_label not in {"records", "messaging"}:
            continue
        for row in model.objects.all():
            found.add(str(row))
            for field in ("title", "subject", "body", "name", "medication", "substance"):
                if isinstance(getattr(row, field, None), str):
                    found.add(getattr(row, field))
    return {text for text in found if len(text) >= 8}


def test_no_admin_page_shows_health_content(client, login, superuser, health_data, patient, clinician):
    """Every changelist, change, delete and history page of every registered model,
    and the bulk delete confirmation, for accounts that hold health data."""
    secrets = health_strings()
    assert {"Compte rendu de cardiologie", "Douleur thoracique la nuit", "Bisoprolol 2,5 mg"} <= secrets
    login(superuser)
    pages = 0
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls = [reverse(f"{prefix}_changelist")]
        for pk in model.objects.values_list("pk", flat=True):
            urls += [reverse(f"{prefix}_{view}", args=[pk]) for view in ("change", "delete", "history")]
        for url in urls:
            response = client.get(url)
            assert response.status_code in (200, 403), url
            body = response.content.decode()
            assert not [text for text in secrets if text in body], url
            pages += 1
    users = [patient.user.pk, clinician.pk]
    bulk = client.post(
        reverse("admin:accounts_user_changelist"), {"action": "delete_selected", "_selected_action": users}
    )
    assert not [text for text in secrets if text in bulk.content.decode()]
    assert pages > 20


@pytest.mark.parametrize("who", ["patient", "clinician"])
def test_an_account_holding_health_data_cannot_be_deleted_from_the_admin(
    request, client, login, superuser, health_data, who
):
    user = as_user(request.getfixturevalue(who))
    login(superuser)
    page = client.get(reverse("admin:accounts_user_delete", args=[user.pk]))
    assert "désactivez plutôt le compte depuis la console d’assistance" in page.content.decode()
    response = client.post(reverse("admin:accounts_user_delete", args=[user.pk]), {"post": "yes"})
    assert response.status_code == 403
    bulk = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"},
    )
    assert bulk.status_code == 403
    assert User.objects.filter(pk=user.pk).exists()


def test_a_patient_account_with_only_its_record_cannot_be_deleted_either(client, login, superuser, patient):
    """No authored rows, but deleting the login would cut the record from its holder."""
    login(superuser)
    response = client.post(reverse("admin:accounts_user_delete", args=[patient.user.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert User.objects.filter(pk=patient.user.pk).exists()


def test_an_account_without_health_data_can_still_be_deleted(client, login, superuser):
    spare = UserFactory(role=User.Role.SUPPORT)
    login(superuser)
    response = client.post(reverse("admin:accounts_user_delete", args=[spare.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=spare.pk).exists()
