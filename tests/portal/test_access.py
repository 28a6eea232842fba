"""The access policy, rule by rule."""

import pytest
from django.db import connection
from django.http import Http404

from portal import access
from portal.audit.models import AccessLog, AppendOnlyError
from portal.careteams.models import CareLink
from tests.factories import CareLinkFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_patient_acts_for_their_own_record_only(patient, other_patient):
    assert list(access.patients_acted_for(patient.user)) == [patient]
    assert [(record.patient, record.kind) for record in access.records_of(patient.user)] == [(patient, "self")]


def test_patient_cares_for_nobody(patient):
    assert not access.patients_cared_for(patient.user).exists()


def test_clinician_cares_for_patients_of_active_links_of_their_teams(clinician, patient, other_patient):
    assert list(access.patients_cared_for(clinician)) == [patient]
    assert access.get_cared_patient(clinician, patient.pk) == patient


@pytest.mark.parametrize("status", [CareLink.Status.ENDED, CareLink.Status.BLOCKED])
def test_ended_or_blocked_link_gives_no_access(clinician, patient, status):
    patient.care_links.update(status=status)
    assert not access.patients_cared_for(clinician).exists()
    with pytest.raises(Http404):
        access.get_cared_patient(clinician, patient.pk)


def test_one_active_link_is_enough_when_another_team_is_blocked(clinician, patient, other_team):
    clinician.memberships.create(team=other_team)
    CareLinkFactory(patient=patient, team=other_team, status=CareLink.Status.BLOCKED)
    assert list(access.patients_cared_for(clinician)) == [patient]


def test_patient_linked_to_two_of_my_teams_is_listed_once(clinician, patient, other_team):
    clinician.memberships.create(team=other_team)
    CareLinkFactory(patient=patient, team=other_team)
    assert list(access.patients_cared_for(clinician)) == [patient]


def test_unrelated_clinician_gets_404_like_for_unknown_patient(other_clinician, patient):
    with pytest.raises(Http404):
        access.get_cared_patient(other_clinician, patient.pk)
    with pytest.raises(Http404):
        access.get_cared_patient(other_clinician, 999_999)
    with pytest.raises(Http404):
        access.get_cared_patient(other_clinician, "not-a-number")


def test_support_staff_get_no_patient(support, patient):
    assert not access.patients_acted_for(support).exists()
    assert not access.patients_cared_for(support).exists()
    assert access.records_of(support) == []
    with pytest.raises(Http404):
        access.get_cared_patient(support, patient.pk)


def test_deactivated_accounts_get_nothing(clinician, patient):
    clinician.is_active = False
    patient.user.is_active = False
    assert not access.patients_cared_for(clinician).exists()
    assert not access.patients_acted_for(patient.user).exists()


def test_a_clinician_role_is_needed_even_with_a_membership(patient, team):
    impostor = UserFactory(role="patient")
    impostor.memberships.create(team=team)
    assert not access.patients_cared_for(impostor).exists()


def test_record_without_login_is_reachable_by_its_care_team_only(clinician, team):
    child = PatientFactory(user=None, first_name="Léa")
    CareLinkFactory(patient=child, team=team)
    assert child in access.patients_cared_for(clinician)


def test_reading_by_a_clinician_is_traced_with_the_team(clinician, patient, team):
    row = access.trace_read(clinician, patient, AccessLog.Action.VIEW_RECORD)
    assert row is not None
    assert (row.patient, row.actor, row.actor_role, row.team) == (patient, clinician, "clinician", team)


def test_reading_ones_own_record_is_not_traced(patient):
    assert access.trace_read(patient.user, patient, AccessLog.Action.VIEW_RECORD) is None
    assert not AccessLog.objects.exists()


def test_access_log_refuses_update_and_delete(clinician, patient):
    row = access.trace_read(clinician, patient, AccessLog.Action.VIEW_RECORD)
    row.target = "changed"
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        AccessLog.objects.filter(pk=row.pk).update(target="changed")
    with pytest.raises(AppendOnlyError):
        AccessLog.objects.filter(pk=row.pk).delete()


def test_database_refuses_to_alter_the_access_log(postgres, clinician, patient):
    from django.db import DatabaseError, transaction

    row = access.trace_read(clinician, patient, AccessLog.Action.VIEW_RECORD)
    for sql in ("UPDATE audit_accesslog SET target = 'x' WHERE id = %s", "DELETE FROM audit_accesslog WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [row.pk])
    assert AccessLog.objects.get(pk=row.pk).target == ""
