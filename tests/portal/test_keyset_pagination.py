"""Older / newer pages: every row once, in order, whatever the ties; a cursor from
someone else's record gives nothing of it; a deep page costs what the first does."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal import pagination
from portal.accounts.models import Patient
from portal.pagination import Rows, keyset_page
from records.models import Document
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def make_documents(patient, author, count):
    day = datetime.date(2026, 1, 1)
    return Document.objects.bulk_create(
        Document(
            patient=patient, title=f"Doc {i:03d}", category="other", care_date=day - datetime.timedelta(days=i // 3),
            author=author, content_type="application/pdf", size=1, sha256="0" * 64, key_id="k", file_name=f"{i}",
        )  # three documents a day: ties on the date
        for i in range(count)
    )  # fmt: skip


def titles(response):
    return [d.title for d in response.context["page"].object_list]


def test_older_then_newer_walks_every_document_once_in_order(client, login, patient):
    make_documents(patient, patient.user, 60)
    expected = list(
        Document.objects.filter(patient=patient).order_by("-care_date", "-pk").values_list("title", flat=True)
    )
    login(patient)
    url = reverse("records:documents")
    response, seen, pages = client.get(url), [], []
    while True:
        seen += titles(response)
        pages.append(response)
        older = response.context["page"].older
        if older is None:
            break
        assert f"older={older}" in response.content.decode()
        response = client.get(url, {"older": older})
    assert seen == expected and len(pages) == 3
    back = client.get(url, {"newer": pages[-1].context["page"].newer})
    assert titles(back) == titles(pages[-2])
    assert client.get(url, {"newer": pages[1].context["page"].newer}).context["page"].newer is None


def test_a_cursor_from_another_record_is_ignored(client, login, patient, other_patient):
    make_documents(patient, patient.user, 30)
    theirs = make_documents(other_patient, other_patient.user, 30)
    login(patient)
    response = client.get(reverse("records:documents"), {"older": theirs[5].pk})
    assert titles(response) == titles(client.get(reverse("records:documents")))
    assert all(d.patient_id == patient.pk for d in response.context["page"].object_list)


def test_a_deep_page_runs_the_same_queries_as_the_first(client, login, patient):
    make_documents(patient, patient.user, 200)
    login(patient)
    url = reverse("records:documents")
    client.get(url)
    with CaptureQueriesContext(connection) as first:
        client.get(url)
    deep = Document.objects.filter(patient=patient).order_by("-care_date", "-pk")[150]
    with CaptureQueriesContext(connection) as later:
        response = client.get(url, {"older": deep.pk})
    assert len(titles(response)) == 25
    assert len(later) == len(first) + 1  # the cursor's row, by primary key
    assert not [q for q in later if "OFFSET" in q["sql"].upper()]


def test_the_team_inbox_and_access_history_page_by_cursor(client, login, patient, clinician, team):
    from messaging.models import Conversation
    from portal.audit.models import AccessLog

    Conversation.objects.bulk_create(
        Conversation(patient=patient, team=team, subject=f"S{i}", started_by=patient.user) for i in range(30)
    )
    AccessLog.objects.bulk_create(
        AccessLog(patient=patient, actor=clinician, actor_role="clinician", action="view_record") for _ in range(30)
    )
    login(clinician)
    first = client.get(reverse("messaging:team_inbox"), {"status": "open"})
    second = client.get(reverse("messaging:team_inbox"), {"status": "open", "older": first.context["page"].older})
    assert len(first.context["page"].object_list) == 25 and len(second.context["page"].object_list) == 5
    assert "status=open" in first.content.decode().split('rel="next"')[0].rsplit("href", 1)[1]
    login(patient)
    assert AccessLog.objects.filter(patient=patient).count() == 60  # and the inbox's two pages, logged
    first = client.get(reverse("records:access_history"))
    second = client.get(reverse("records:access_history"), {"older": first.context["page"].older})
    third = client.get(reverse("records:access_history"), {"older": second.context["page"].older})
    assert [len(p.context["page"].object_list) for p in (first, second, third)] == [25, 25, 10]
    assert third.context["page"].older is None


def born_since(day):
    """A builder for ``Rows``: the patients born on ``day`` or after."""
    return Patient.objects.filter(birth_date__gte=day)


def walk(source, *, fields, descending, size=4):
    """Every page from the first by ``older``, then back by ``newer``: the rows' ids."""
    pages, params = [], {}
    while True:
        page = keyset_page(source, params, fields=fields, size=size, descending=descending)
        pages.append([row.pk for row in page.object_list])
        if page.older is None:
            break
        params = {"older": str(page.older)}
    while page.newer is not None:
        page = keyset_page(source, {"newer": str(page.newer)}, fields=fields, size=size, descending=descending)
        pages.append([row.pk for row in page.object_list])
    return pages


@pytest.mark.parametrize(
    ("fields", "descending"), [(("birth_date",), True), (("last_name", "first_name"), False)], ids=["date", "names"]
)
def test_prepared_rows_give_the_pages_the_queryset_gives(fields, descending):
    """``Rows`` (prepared queries, from cursors whose values are dates and names, with
    ties) walk the same pages as the queryset they build, there and back."""
    day = datetime.date(1980, 1, 1)
    for i in range(15):
        PatientFactory(
            user=None, last_name=f"Nom{i % 4}", first_name=f"Prénom{i % 3}", birth_date=day + datetime.timedelta(i // 2)
        )
    PatientFactory(user=None, birth_date=day - datetime.timedelta(days=1))  # not born since
    rows = Rows.of(born_since, day)
    expected = walk(rows.queryset(), fields=fields, descending=descending)
    assert len(expected) == 4 + 3 and sum(len(page) for page in expected[:4]) == 15
    assert walk(rows, fields=fields, descending=descending) == expected
    assert walk(rows, fields=fields, descending=descending) == expected  # prepared by then
    shapes = pagination._prepared_rows.prepared_shapes().items()
    kept = [kept for key, kept in shapes if ("build", born_since) in key and ("fields", fields) in key]
    assert len(kept) == 3  # the first page, older, newer
    if connection.vendor == "postgresql":  # SQLite's dates are text: built at each call there
        assert all(kept)
    with pytest.raises(ValueError):
        Rows.of(lambda day: born_since(day), day)
