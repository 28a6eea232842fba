"""Every record whose identity a support page shows is told so in its access history:
the page's own person, and the records on the other side of a representation it names
(a parent's child, a helper's patient). Each page is rendered, every record's name is
looked for in it, and each one found must have a new line of support's."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.accounts.models import Patient, Representation
from portal.audit import services as audit
from portal.audit.models import AccessLog
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def family(clinician):
    """Camille, her child Léa (no login), Manon who helps Camille, and a stranger."""
    camille = PatientFactory(user=UserFactory(first_name="Camille", last_name="Durand"))
    lea = PatientFactory(user=None, first_name="Léa", last_name="Durand-Petit")
    manon = PatientFactory(user=UserFactory(first_name="Manon", last_name="Aidante"))
    PatientFactory(user=UserFactory(first_name="Ignace", last_name="Inconnu"))
    now = timezone.now()
    parent = Representation.objects.create(patient=lea, representative=camille.user, kind="parent", starts_at=now)
    helper = Representation.objects.create(
        patient=camille, representative=manon.user, kind="helper", documents=True, starts_at=now,
        ends_at=now + datetime.timedelta(days=30),
    )  # fmt: skip
    log = AccessLog.objects.create(patient=camille, actor=clinician, actor_role="clinician", action="view_record")
    case, _ = audit.report_access(patient=camille, access_log=log)
    return {"camille": camille, "lea": lea, "manon": manon, "parent": parent, "helper": helper, "case": case}


PAGES = {
    "Camille's account": lambda f: reverse("support:account", args=[f["camille"].user_id]),
    "Manon's account (helps Camille)": lambda f: reverse("support:account", args=[f["manon"].user_id]),
    "Camille's representatives": lambda f: reverse("support:representations", args=[f["camille"].pk]),
    "Léa's representatives": lambda f: reverse("support:representations", args=[f["lea"].pk]),
    "ending Camille's parental link": lambda f: reverse("support:end_representation", args=[f["parent"].pk]),
    "ending Manon's help": lambda f: reverse("support:end_representation", args=[f["helper"].pk]),
    "inviting Léa": lambda f: reverse("support:invite_patient", args=[f["lea"].pk]),
    "the reported accesses": lambda f: reverse("support:reports"),
    "one reported access": lambda f: reverse("support:report", args=[f["case"].pk]),
    "Camille's possible duplicates": lambda f: reverse("support:merge_patient", args=[f["camille"].pk]),
}


@pytest.mark.parametrize("page", PAGES)
def test_each_identity_a_support_page_shows_is_in_that_records_history(client, login, support, family, page):
    login(support)
    before = {patient.pk: patient.access_logs.count() for patient in Patient.objects.all()}
    response = client.get(PAGES[page](family))
    assert response.status_code == 200
    body = response.content.decode()
    shown = [patient for patient in Patient.objects.all() if patient.full_name in body]
    assert shown, "the page shows nobody: the test proves nothing"
    for patient in shown:
        new = patient.access_logs.filter(actor=support, action=AccessLog.Action.SUPPORT_VIEW).count()
        assert patient.access_logs.count() > before[patient.pk] and new, f"{patient.full_name} shown, not logged"
    for patient in Patient.objects.exclude(pk__in=[p.pk for p in shown]):
        assert patient.access_logs.count() == before[patient.pk], f"{patient.full_name} logged, not shown"
