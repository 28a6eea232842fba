"""The records pages cost what a small record costs, whatever the size of the record:
the lab results and a test's history page by cursor (older / newer, no OFFSET: every
item once, newest first), and each page runs a bounded number of queries (no query per
row) for a record of one item as for one of many."""

import datetime
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from messaging.models import Conversation, Message
from portal.audit.models import AccessLog
from portal.rows import date_formatter, escaped, labels_of, url_by_pk
from records import display
from records.models import Document, LabReport, News, Observation, ObservationRevision, Prescription

pytestmark = pytest.mark.django_db
DAY = datetime.timedelta(days=1)
START = datetime.date(2026, 1, 1)


def make_reports(patient, clinician, team, count, *, per_day=3):
    """``count`` lab reports of two values each (a glucose and a TSH), ``per_day`` on the
    same day (ties on the date), newest last."""
    reports = LabReport.objects.bulk_create(
        LabReport(patient=patient, title=f"Bilan {i:03d}", collected_on=START + DAY * (i // per_day),
                  author=clinician, team=team)
        for i in range(count)
    )  # fmt: skip
    Observation.objects.bulk_create(
        Observation(report=report, patient=patient, loinc=loinc, name=name, value=Decimal("1.2"), unit="g/L",
                    low=Decimal("0.7"), high=Decimal("1.1"))
        for report in reports for loinc, name in (("2345-7", "Glucose"), ("3016-3", "TSH"))
    )  # fmt: skip
    return reports


def walk(client, url):
    """Every page from the first by the "older" links: the pages' responses."""
    pages = [client.get(url)]
    while (older := pages[-1].context["page"].older) is not None:
        assert f"older={older}" in pages[-1].content.decode()  # the link is on the page
        pages.append(client.get(url, {"older": older}))
    return pages


def listed(response):
    return [row.pk for row in response.context["page"].object_list]


def test_lab_results_page_by_cursor_each_report_once_newest_first(client, login, patient, clinician, team):
    make_reports(patient, clinician, team, 25)
    expected = list(
        LabReport.objects.filter(patient=patient).order_by("-collected_on", "-pk").values_list("pk", flat=True)
    )
    login(patient)
    url = reverse("records:results")
    pages = walk(client, url)
    assert [len(listed(p)) for p in pages] == [10, 10, 5]
    assert [pk for p in pages for pk in listed(p)] == expected
    assert 'rel="next"' in pages[0].content.decode() and 'rel="prev"' not in pages[0].content.decode()
    # Back from the last page: the one before it; from the second: the first (no "newer").
    assert listed(client.get(url, {"newer": pages[2].context["page"].newer})) == listed(pages[1])
    assert client.get(url, {"newer": pages[1].context["page"].newer}).context["page"].newer is None


def test_a_deep_page_of_lab_results_costs_what_the_first_does(client, login, patient, clinician, team):
    reports = make_reports(patient, clinician, team, 60)
    login(patient)
    url = reverse("records:results")
    client.get(url)
    with CaptureQueriesContext(connection) as first:
        client.get(url)
    with CaptureQueriesContext(connection) as deep:
        response = client.get(url, {"older": reports[15].pk})
    assert len(listed(response)) == 10
    assert len(deep) == len(first) + 1  # the cursor's row, by primary key
    assert not [q for q in first.captured_queries + deep.captured_queries if "OFFSET" in q["sql"].upper()]


@pytest.mark.parametrize("cursor", ["abc", "-1", "999999999", "1.5"])
def test_a_bad_cursor_on_the_lab_results_shows_the_first_page(client, login, patient, clinician, team, cursor):
    make_reports(patient, clinician, team, 15)
    login(patient)
    url = reverse("records:results")
    first = listed(client.get(url))
    for name in ("older", "newer"):
        response = client.get(url, {name: cursor})
        assert response.status_code == 200 and listed(response) == first


def test_a_cursor_from_another_record_gives_nothing_of_it(client, login, patient, clinician, team, other_patient):
    make_reports(patient, clinician, team, 15)
    theirs = make_reports(other_patient, clinician, team, 15)
    login(patient)
    url = reverse("records:results")
    response = client.get(url, {"older": theirs[10].pk})
    assert listed(response) == listed(client.get(url))
    assert all(report.patient_id == patient.pk for report in response.context["page"].object_list)
    glucose = Observation.objects.filter(report__patient=patient, loinc="2345-7").first()
    their_glucose = Observation.objects.filter(report__patient=other_patient, loinc="2345-7").first()
    history = reverse("records:observation_history", args=[glucose.pk])
    response = client.get(history, {"older": their_glucose.pk})
    assert listed(response) == listed(client.get(history))
    shown = [row.pk for row in response.context["page"].object_list]
    assert shown and set(Observation.objects.filter(pk__in=shown).values_list("patient_id", flat=True)) == {patient.pk}


def test_a_tests_history_pages_by_cursor_each_value_once_newest_first(client, login, patient, clinician, team):
    make_reports(patient, clinician, team, 120)  # 120 glucose values, 40 days of 3
    glucose = Observation.objects.filter(patient=patient, loinc="2345-7")
    expected = list(glucose.order_by("-report__collected_on", "-pk").values_list("pk", flat=True))
    login(patient)
    url = reverse("records:observation_history", args=[glucose.first().pk])
    pages = walk(client, url)
    assert [len(listed(p)) for p in pages] == [50, 50, 20]
    assert [pk for p in pages for pk in listed(p)] == expected  # no TSH, each glucose once
    assert listed(client.get(url, {"newer": pages[2].context["page"].newer})) == listed(pages[1])
    assert listed(client.get(url, {"older": "nonsense"})) == listed(pages[0])
    # The chart shows the latest values whichever page the table is on.
    assert pages[0].context["chart"] == pages[2].context["chart"]
    assert pages[2].content.decode().count('class="trend-dot') == 100


def test_a_deep_page_of_a_tests_history_runs_no_offset(client, login, patient, clinician, team):
    make_reports(patient, clinician, team, 150)
    glucose = list(Observation.objects.filter(patient=patient, loinc="2345-7").order_by("-report__collected_on", "-pk"))
    login(patient)
    url = reverse("records:observation_history", args=[glucose[0].pk])
    client.get(url)
    with CaptureQueriesContext(connection) as first:
        client.get(url)
    with CaptureQueriesContext(connection) as deep:
        response = client.get(url, {"older": glucose[99].pk})
    assert listed(response) == [o.pk for o in glucose[100:150]]
    # The cursor's row, and the chart's values read apart (the first page is among them:
    # one query reads both there).
    assert len(deep) == len(first) + 2
    assert not [q for q in first.captured_queries + deep.captured_queries if "OFFSET" in q["sql"].upper()]


# --- A ceiling of queries per page, for a small record and a large one ------------------


def fill_record(patient, clinician, team, size):
    """A record with ``size`` items of each kind: documents, lab reports (with values, one
    of them corrected), prescriptions, news of each, and conversations with messages."""
    documents = Document.objects.bulk_create(
        Document(patient=patient, title=f"Document {i}", category="other", care_date=START + DAY * i,
                 author=clinician, author_team=team if i % 2 else None, content_type="application/pdf", size=1,
                 sha256="0" * 64, key_id="k", file_name=f"{i}", status="ready")
        for i in range(size)
    )  # fmt: skip
    reports = make_reports(patient, clinician, team, size, per_day=1)
    for observation in Observation.objects.filter(report__in=reports)[: max(1, size // 3)]:
        ObservationRevision.objects.create(observation=observation, value=Decimal("1.0"), unit="g/L", status="final")
    prescriptions = Prescription.objects.bulk_create(
        Prescription(patient=patient, medication=f"Médicament {i}", dosage="1", frequency="le matin",
                     start_date=datetime.date.today() - DAY * i, end_date=datetime.date.today() + DAY * (i % 20),
                     renewable=True, prescriber=clinician, team=team)
        for i in range(size)
    )  # fmt: skip
    News.objects.bulk_create(
        [News(patient=patient, kind=News.Kind.DOCUMENT, document=d) for d in documents]
        + [News(patient=patient, kind=News.Kind.RESULT, lab_report=r) for r in reports]
        + [News(patient=patient, kind=News.Kind.PRESCRIPTION, prescription=p) for p in prescriptions]
    )
    for i in range(size):
        conversation = Conversation.objects.create(patient=patient, team=team, subject=f"Sujet {i}",
                                                   started_by=patient.user)  # fmt: skip
        Message.objects.bulk_create(
            Message(conversation=conversation, author=clinician, body="Bonjour") for _ in range(2)
        )
    return reports


# The most queries each page may run, session, login and access log included ("record":
# the summary of the record for its care team, and each of its histories, with when its
# teams last looked at the results and what arrived since, in one query; a list of
# documents: the names of those who added some on the patient's side, the reader apart;
# the dashboard: each card's query prepared (portal.prepared), a query each).
CEILINGS = {
    "dashboard": 19, "documents": 11, "results": 10, "history": 11,
    "record": 20, "record documents": 15, "record prescriptions": 15, "record results": 16,
}  # fmt: skip
# Where the database takes no limit on a part of a UNION (SQLite), portal.union.union_all
# runs one query per part: the record page's latest measurements of four kinds.
ONE_QUERY_PER_PART = {"record": 3}


def page_url(name, patient):
    observation = Observation.objects.filter(patient=patient, loinc="2345-7").order_by("pk").first()
    return {
        "dashboard": reverse("patient_home"),
        "documents": reverse("records:documents"),
        "results": reverse("records:results"),
        "history": reverse("records:observation_history", args=[observation.pk]),
        "record": reverse("careteams:patient_detail", args=[patient.pk]),
        **{
            f"record {page}": reverse(f"careteams:patient_{page}", args=[patient.pk])
            for page in ("documents", "prescriptions", "results")
        },
    }[name]


@pytest.mark.parametrize("size", [1, 40])
@pytest.mark.parametrize("name", sorted(CEILINGS))
def test_each_records_page_runs_a_bounded_number_of_queries(
    client, login, patient, clinician, team, django_assert_max_num_queries, name, size
):
    fill_record(patient, clinician, team, size)
    reader = clinician if name.startswith("record") else patient
    login(reader)
    url = page_url(name, patient)
    assert client.get(url).status_code == 200  # the first visit marks news seen, once
    logged = AccessLog.objects.count()
    ceiling = CEILINGS[name]
    if not connection.features.supports_slicing_ordering_in_compound:
        ceiling += ONE_QUERY_PER_PART.get(name, 0)
    with django_assert_max_num_queries(ceiling):
        response = client.get(url)
    assert response.status_code == 200
    # The clinician's read is still logged, once per page; the patient's own is not.
    assert AccessLog.objects.count() - logged == (1 if reader == clinician else 0)


def test_the_lab_tables_read_as_before(client, login, patient, clinician, team):
    """The strings prepared in Python for the tables are those the template filters made:
    links, French numbers and labels, range, flag; the clinician's "Correct" link."""
    from django.utils import translation

    from records import services

    report = services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan sanguin", collected_on=START,
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1.32"), "unit": "g/L",
                       "low": Decimal("0.70"), "high": Decimal("1.10")},
                      {"loinc": "1-1", "name": "Sans valeurs", "value": Decimal("3"), "unit": "U"}],
    )  # fmt: skip
    glucose, bare = report.observations.get(loinc="2345-7"), report.observations.get(loinc="1-1")
    with translation.override("fr"):
        value, range_, flag = (translation.gettext(s) for s in ("Value", "Reference range", "Flag"))
        high, normal = translation.gettext("High"), translation.gettext("Normal")
    history = reverse("records:observation_history", args=[glucose.pk])
    expected = [
        f'<tr class="flag-high">\n          <th scope="row"><a href="{history}">Glucose</a> <small>LOINC 2345-7</small></th>',
        f'<td data-label="{value}">1,32 g/L',
        f'<td data-label="{range_}">0,7 – 1,1 g/L</td>',
        f'<td data-label="{flag}"><span class="flag">{high}</span></td>',
        f'<td data-label="{range_}">—</td>',
        # No range and no interpretation from the laboratory: no flag, not "Normal".
        f'<tr class="flag-none">\n          <th scope="row"><a href="{reverse("records:observation_history", args=[bare.pk])}">Sans valeurs</a>',
        f'<td data-label="{flag}"><span class="flag"></span></td>',
    ]
    login(patient)
    page = client.get(reverse("records:results")).content.decode()
    assert all(snippet in page for snippet in expected), page
    assert f'<span class="flag">{normal}</span>' not in page
    assert "/correct/" not in page
    history_page = client.get(history).content.decode()
    assert f'<td data-label="{range_}">0,7 – 1,1</td>' in history_page
    assert f'<td data-label="{value}">1,32 g/L' in history_page
    assert reverse("records:observation_history", args=[bare.pk]) in page
    login(clinician)
    record = client.get(reverse("careteams:patient_results", args=[patient.pk])).content.decode()
    assert all(snippet in record for snippet in expected)
    assert f'href="{reverse("records:correct_observation", args=[glucose.pk])}"' in record


def between_tags(html):
    """``html`` without the blank lines and indentation between its tags (what a template's
    tags and comments leave)."""
    return re.sub(r">\s+<", "><", html.strip())


# The template records.display.ObservationTables replaced (records/observation_table.html),
# and what prepared each observation for it: the reference the tables are held to.
OBSERVATION_TABLE = Template(
    """{% load translations %}{% translate "Value" as value_label %}{% translate "Reference range" as range_label %}{% translate "Flag" as flag_label %}<div class="table-wrap">
  <table class="table-stack">
    <thead><tr>
      <th scope="col">{% translate "Test" %}</th><th scope="col">{{ value_label }}</th>
      <th scope="col">{{ range_label }}</th><th scope="col">{{ flag_label }}</th>
    </tr></thead>
    <tbody>
      {% for observation in observations %}
        <tr class="flag-{{ observation.flag_class }}">
          <th scope="row"><a href="{{ observation.history_url }}">{{ observation.name }}</a> <small>LOINC {{ observation.loinc }}</small></th>
          <td data-label="{{ value_label }}">{{ observation.value_text }} {{ observation.unit }}{% if observation.corrected_at %}<br><small class="status">{% blocktranslate with date=observation.corrected_at|date:"SHORT_DATE_FORMAT" %}Corrected on {{ date }}{% endblocktranslate %}</small>{% endif %}{% if correct %}<br><small><a href="{{ observation.correct_url }}">{% translate "Correct" %}<span class="visually-hidden"> : {{ observation.name }}</span></a></small>{% endif %}</td>
          <td data-label="{{ range_label }}">{% if observation.has_range %}{{ observation.low_text }} – {{ observation.high_text }} {{ observation.unit }}{% else %}—{% endif %}</td>
          <td data-label="{{ flag_label }}"><span class="flag">{{ observation.flag_label }}</span></td>
        </tr>
      {% endfor %}
    </tbody>
  </table>
</div>
"""
)


def prepare_observations(observations, *, history_links=True, correct_links=False, dates=False):
    """What records.display.prepare_observations set on each of ``observations`` for
    OBSERVATION_TABLE and the history table, before the tables read the values
    themselves (of what it set, what those two read): ``flag_class``, ``flag_label``,
    ``value_text``, ``low_text`` and ``high_text`` ("…" for no limit), ``has_range``;
    ``history_url`` (``history_links``), ``correct_url`` (``correct_links``) and
    ``date_text`` (``dates``: the sample's date). Returns them, as a list."""
    observations = list(observations)
    number, flags = display._Numbers(), labels_of(Observation.Flag.choices)
    day = date_formatter("SHORT_DATE_FORMAT") if dates else None
    history_url = url_by_pk("records:observation_history") if history_links else None
    correct_url = url_by_pk("records:correct_observation") if correct_links else None
    for observation in observations:
        flag = observation.flag  # None: no range and no interpretation, nothing to say
        observation.flag_class, observation.flag_label = (flag.value, flags[flag]) if flag else ("none", "")
        observation.value_text = number(observation.value)
        observation.low_text = number(observation.low) or "…"
        observation.high_text = number(observation.high) or "…"
        observation.has_range = observation.low is not None or observation.high is not None
        if history_url:
            observation.history_url = history_url(observation.pk)
        if correct_url:
            observation.correct_url = correct_url(observation.pk)
        if day:
            observation.date_text = day(observation.collected_on)
    return observations


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_lab_tables_read_as_the_template_writes_them(patient, clinician, team, language):
    """records.display writes the table records/observation_table.html wrote (the patient's
    results, a care team's record page with its "Correct" links) and the rows of a test's
    history in Python: the same markup, a corrected value, no range, a high one, escaped;
    a second report of the same tests (one value the same, one not, another corrected)
    written by the same writer, as a page writes its reports, with its own links."""
    from django.utils import timezone, translation

    from records import services

    report = services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan", collected_on=START,
        observations=[{"loinc": "2345-7", "name": "Glucose <à jeun>", "value": Decimal("1.32"), "unit": "g/L",
                       "low": Decimal("0.70"), "high": Decimal("1.10")},
                      {"loinc": "1-1", "name": "Sans valeurs", "value": Decimal("3"), "unit": "U & co"},
                      {"loinc": "1-2", "name": "Bas", "value": Decimal("0.5"), "unit": "", "low": Decimal("1")}],
    )  # fmt: skip
    later = services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan", collected_on=START + datetime.timedelta(days=9),
        observations=[{"loinc": "2345-7", "name": "Glucose <à jeun>", "value": Decimal("1.32"), "unit": "g/L",
                       "low": Decimal("0.70"), "high": Decimal("1.10")},
                      {"loinc": "1-1", "name": "Sans valeurs", "value": Decimal("4"), "unit": "U & co"},
                      {"loinc": "1-2", "name": "Bas", "value": Decimal("0.5"), "unit": "", "low": Decimal("1")}],
    )  # fmt: skip
    observations = list(report.observations.all())
    observations[0].corrected_at = timezone.now()
    again = list(later.observations.all())
    again[2].corrected_at = timezone.now() - datetime.timedelta(days=400)
    with translation.override(language):
        prepare_observations([*observations, *again], correct_links=True)
        for correct in (False, True):  # the patient's, then a care team's that may correct them
            tables = display.ObservationTables()  # one per page, for each of its reports
            for values in (observations, again):
                expected = OBSERVATION_TABLE.render(Context({"observations": values, "correct": correct}))
                written = str(tables(values, correct=correct))
                assert between_tags(written) == between_tags(expected)
                assert all(f"/{value.pk}/" in written for value in values)
                assert (
                    ("Corriger" if language == "fr" else "Correct") in written if correct else "/correct" not in written
                )
                assert "Glucose &lt;à jeun&gt;" in written and "U &amp; co" in written and "<à" not in written
        # A test's history: an earlier value, its unit and the reason escaped, as the
        # template's {% blocktranslate %} did.
        prepare_observations(observations, history_links=False, dates=True)
        earlier = ObservationRevision(value=Decimal("1.5"), unit="<g>", status="final", reason="<b>faute</b>")
        rows = str(display.history_rows_html(observations, [[earlier], *([] for _ in observations[1:])]))
        sentence = translation.gettext("Corrected on %(date)s; earlier value: %(value)s %(unit)s")
        value = "1,5" if language == "fr" else "1.5"  # as the laboratory wrote it, no zero added
        assert sentence.split("%(date)s")[0] in rows and f"{value} &lt;g&gt; — &lt;b&gt;faute&lt;/b&gt;</small>" in rows
        assert rows.count("<tr class=") == 3 and "<b>" not in rows


# records.display.history_rows_html as it was, from rows prepare_observations prepared: the
# reference the rows written once per distinct value are held to.
_HISTORY_ROW_AS_IT_WAS = (
    '\n          <tr class="flag-{flag}"><th scope="row">{date}</th>'
    '<td data-label="{value_label}">{value} {unit}{earlier}</td>'
    '\n          <td data-label="{range_label}">{low} – {high}</td>'
    '<td data-label="{flag_label}"><span class="flag">{flag_text}</span></td></tr>\n        '
)


def history_rows_as_they_were(rows):
    prepare_observations(rows, history_links=False, dates=True)
    row_format = display._with_labels(
        _HISTORY_ROW_AS_IT_WAS,
        value_label=display._t("Value"),
        range_label=display._t("Reference range"),
        flag_label=display._t("Flag"),
    )
    corrected = display._t("Corrected on %(date)s; earlier value: %(value)s %(unit)s")
    day, number = date_formatter("SHORT_DATE_FORMAT"), display._Numbers()
    out = []
    for row in rows:
        earlier = ""
        for revision in row.revision_list:
            values = {"date": day(revision.replaced_at), "value": number(revision.value), "unit": revision.unit}
            earlier += '<br><small class="status">' + corrected % {k: escaped(v) for k, v in values.items()}
            earlier += (f" — {escaped(revision.reason)}" if revision.reason else "") + "</small>"
        out.append(
            row_format.format(
                flag=row.flag_class, date=escaped(row.date_text), value=row.value_text, unit=escaped(row.unit),
                earlier=earlier, low=row.low_text, high=row.high_text, flag_text=escaped(row.flag_label),
            )
        )  # fmt: skip
    return "".join(out)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_tests_history_rows_read_as_they_did_when_each_was_prepared(language):
    """A test's history writes the cells a value, its unit, its range and its flag make
    once per distinct set: the rows are those it wrote when each row was prepared, for
    repeated and varied values, each flag (from the range or the laboratory's), no range,
    half a range, hostile units, earlier values, in French and in English."""
    import random

    from django.utils import timezone, translation

    rnd = random.Random(5)  # noqa: S311 (test data)
    earlier = ObservationRevision(value=Decimal("1.5"), unit="<g>", status="final", reason="<b>faute</b>")
    earlier.replaced_at = timezone.now()
    rows = []
    for index in range(120):
        low, high = rnd.choice([(Decimal("0.70"), Decimal("1.10")), (None, Decimal("5")), (Decimal("1"), None),
                                (None, None)])  # fmt: skip
        row = Observation(
            value=rnd.choice([Decimal("1.000"), Decimal("1"), Decimal("0.5"), Decimal("1.32"), Decimal("-0.0040")]),
            unit=rnd.choice(["g/L", "U & co", "<i>x</i>", ""]), low=low, high=high,
            interpretation=rnd.choice(["", "", "H", "LL", "A", "N"]),
            collected_on=START + datetime.timedelta(days=index % 7),
        )  # fmt: skip
        row.revision_list = [earlier] if index % 9 == 0 else []
        rows.append(row)
    with translation.override(language):
        expected = history_rows_as_they_were(rows)
        for row in rows:  # what prepare_observations set: the rows are read without it
            for name in ("flag_class", "flag_label", "value_text", "low_text", "high_text", "date_text"):
                delattr(row, name)
        written = str(display.history_rows_html(rows, [row.revision_list for row in rows]))
    assert written == expected
    assert len({row.flag for row in rows}) >= 4 and "&lt;i&gt;" in written and "<i>" not in written
