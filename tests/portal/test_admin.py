"""The Django admin: superusers only, past the second factor, and no health content."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from portal.accounts.models import User
from tests.conftest import second_factor_of
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
