"""The clinician's patient list reads a fixed number of queries, whatever the number of
patients: a ceiling that holds for one patient and for more than a page of them."""

import pytest
from django.urls import reverse

from tests.factories import CareLinkFactory, CareTeamFactory, PatientFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("size", [1, 30])
@pytest.mark.parametrize("page", ["", "?older=last"])
def test_the_patient_list_has_a_ceiling(
    client, login, clinician, patient, team, size, page, django_assert_max_num_queries
):
    second_team = CareTeamFactory()
    clinician.memberships.create(team=second_team)
    for n in range(size):
        other = PatientFactory(user=None, first_name=f"Luc{n}", last_name=f"Petit{n:02d}")
        CareLinkFactory(patient=other, team=team)
        if n % 2:
            CareLinkFactory(patient=other, team=second_team)
    login(clinician)
    url = reverse("careteams:patient_list")
    first = client.get(url)
    if page:
        cursor = first.context["page"].older or patient.pk
        url += f"?older={cursor}"
    # The session, its user and second factor; the request's transaction (opened, closed),
    # the page, its links, the unread badge, the teams; the cursor's row on a later page.
    with django_assert_max_num_queries(10 if page else 9):
        response = client.get(url)
    assert response.status_code == 200
