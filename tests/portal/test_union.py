"""portal.union.union_all: one query on PostgreSQL, one per part elsewhere (SQLite, which
takes no LIMIT in a part of a UNION), the same rows either way, each part in its order."""

import datetime

import pytest
from django.db import connection
from django.db.models import Value
from django.test.utils import CaptureQueriesContext

from portal.union import union_all
from records.models import Document

pytestmark = pytest.mark.django_db


def test_each_part_keeps_its_own_limit_and_order(patient, clinician, team):
    start = datetime.date(2026, 1, 1)
    Document.objects.bulk_create(
        [
            Document(patient=patient, title=f"D{i}", category="other", care_date=start + datetime.timedelta(days=i),
                     author=clinician, author_team=team, content_type="application/pdf", size=1, sha256="0" * 64,
                     key_id="dev", file_name=f"documents/{i}.bin", status="ready")
            for i in range(6)
        ]
    )  # fmt: skip
    rows = Document.objects.filter(patient=patient)
    newest = rows.annotate(part=Value(1)).values_list("part", "title", "care_date").order_by("-care_date")[:2]
    oldest = rows.filter(care_date__lte=start + datetime.timedelta(days=2))
    oldest = oldest.annotate(part=Value(2)).values_list("part", "title", "care_date").order_by("-care_date")[:3]
    with CaptureQueriesContext(connection) as queries:
        found = union_all(newest, oldest, order_by=("-care_date",))
    assert [title for part, title, _day in found if part == 1] == ["D5", "D4"]
    assert [title for part, title, _day in found if part == 2] == ["D2", "D1", "D0"]
    assert sorted(title for _part, title, _day in union_all(newest, oldest)) == ["D0", "D1", "D2", "D4", "D5"]
    assert len(queries) == (1 if connection.features.supports_slicing_ordering_in_compound else 2)
    assert [title for _part, title, _day in union_all(newest)] == ["D5", "D4"]
