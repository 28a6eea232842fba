"""A care team's pages of a patient's record read no more rows as the record's history
grows (issue 15, goal 3): its documents, prescriptions and lab reports are pages by
cursor, with no COUNT of the history. The measure is test_flat_history's (every SELECT
of the request explained, the rows each plan examined added up), on PostgreSQL only."""

import pytest
from django.urls import reverse

from tests.portal.test_flat_history import FULL_SLACK, LARGE, MIDDLE, PAGE_SLACK, SMALL, World, cost_of, growth

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("history", "page"),
    [
        ("documents", "documents"),
        ("lab_reports", "results"),
        ("lab_reports", "detail"),  # whether another team published results since the team looked
        # The team's reads of the record: each page asks when the team last looked at the results.
        *(("access_logs", page) for page in ("detail", "documents", "results")),
    ],
)
def test_the_record_page_reads_as_many_rows_whatever_the_history(
    history, page, client, login, patient, team, clinician, other_patient, other_team, other_clinician, postgres
):
    world = World(patient, team, clinician, other_patient, other_team, other_clinician)
    login(clinician)
    url = reverse(f"careteams:patient_{page}", args=[patient.pk])
    costs = {}
    for size in (SMALL, MIDDLE, LARGE):
        getattr(world, history)(size - world.added)
        costs[size] = cost_of(client, url)
    small, middle, large = costs[SMALL], costs[MIDDLE], costs[LARGE]
    figures = f"record, {history}: {small.rows}, {middle.rows}, {large.rows} rows read after {SMALL}, {MIDDLE}, {LARGE}"
    print(figures)
    assert large.rows <= middle.rows + FULL_SLACK, f"{figures}; grown:\n" + "\n".join(growth(middle, large)[:3])
    assert large.rows <= small.rows + PAGE_SLACK, f"{figures}; grown:\n" + "\n".join(growth(small, large)[:3])
