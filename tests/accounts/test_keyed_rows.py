"""The three rows every signed-in request reads (session, user, second-factor device) are
read by ``portal.keyed_rows`` instead of the ORM: the same rows, and the same effect
when one of them changes between two requests."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.models import Patient, User
from portal.keyed_rows import KeyedRow
from tests.conftest import second_factor_of

pytestmark = pytest.mark.django_db


def fields_of(instance):
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_a_keyed_row_is_the_row_the_orm_reads(client, login, patient):
    login(patient)
    user = patient.user
    rows = [
        (User, user.pk),
        (Patient, patient.pk),  # dates, a nullable key, choices
        (Session, client.session.session_key),  # a text key, an aware datetime, a text blob
        (type(second_factor_of(user)), second_factor_of(user).pk),
        (TOTPDevice, TOTPDevice.objects.create(user=user, name="Phone", confirmed=True).pk),
        (StaticDevice, StaticDevice.objects.create(user=user, name="Backup", confirmed=False).pk),
    ]
    for model, key in rows:
        read = KeyedRow(model).get(key)
        orm = model._default_manager.filter(pk=key).first()
        assert type(read) is model
        assert fields_of(read) == fields_of(orm), model
        assert not read._state.adding and read._state.db == "default"
        assert read.pk == key


def test_a_missing_row_is_none_and_a_key_must_be_unique(patient):
    assert KeyedRow(User).get(patient.user.pk + 1000) is None
    assert KeyedRow(Session).get("no-such-session-key") is None
    assert KeyedRow(User, "email").get(patient.user.email).pk == patient.user.pk
    with pytest.raises(ValueError):
        KeyedRow(User, "first_name").get("Camille")


def test_all_the_rows_of_a_key_that_is_not_unique(patient):
    from tests.factories import PatientFactory

    for _ in range(3):
        PatientFactory(birth_date=patient.birth_date)
    PatientFactory(birth_date="1950-05-05")
    rows = KeyedRow(Patient, "birth_date").all(patient.birth_date)
    assert [fields_of(row) for row in sorted(rows, key=lambda row: row.pk)] == [
        fields_of(row) for row in Patient.all_records.filter(birth_date=patient.birth_date).order_by("pk")
    ]
    assert len(rows) == 4
    assert KeyedRow(Patient, "birth_date").all("1900-01-01") == []


def test_exists_tells_whether_another_model_holds_the_key(patient):
    """``exists``: one SELECT answers, row by row, whether a row of another model names
    this row's key; the row itself is read as without it."""
    from portal.accounts.models import Representation
    from tests.factories import PatientFactory

    read = KeyedRow(Patient, "user", exists={"represents": (Representation, "representative")})
    other = PatientFactory()
    assert read.get(patient.user.pk).represents is False
    assert fields_of(read.get(patient.user.pk)) == fields_of(patient)
    Representation.objects.create(patient=other, representative=patient.user, kind="helper", documents=True)
    assert read.get(patient.user.pk).represents is True
    assert read.get(other.user.pk).represents is False  # represented, not representing
    assert read.get(patient.user.pk + 1000) is None


def test_an_expired_session_row_signs_out(client, login, patient):
    login(patient)
    assert client.get(reverse("patient_home")).status_code == 200
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    assert client.get(reverse("patient_home"))["Location"].startswith(reverse("account_login"))


def test_a_removed_or_unconfirmed_device_ends_the_second_factor_at_the_next_request(client, login, patient):
    login(patient)
    assert client.get(reverse("patient_home")).status_code == 200
    device = second_factor_of(patient.user)
    type(device).objects.filter(pk=device.pk).update(confirmed=False)
    assert client.get(reverse("patient_home")).status_code == 302
    type(device).objects.filter(pk=device.pk).update(confirmed=True)
    login(patient)
    assert client.get(reverse("patient_home")).status_code == 200
    second_factor_of(patient.user).delete()
    assert client.get(reverse("patient_home")).status_code == 302


def test_a_device_of_someone_else_or_of_an_unknown_kind_is_no_second_factor(client, login, patient, clinician):
    from django_otp import DEVICE_ID_SESSION_KEY

    for persistent_id in (
        second_factor_of(clinician).persistent_id,
        "accounts.user/1",  # a model that is no device
        "otp_email.emaildevice/not-a-number",
        "nowhere.nothing/1",
    ):
        login(patient)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = persistent_id
        session.save()
        assert client.get(reverse("patient_home")).status_code == 302, persistent_id
