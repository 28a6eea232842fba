"""The care team's patient list: search by name prefix (accents aside), INS, birth date,
unread messages; and the patient's page with the complete, paginated history."""

import datetime
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from messaging import services as messaging
from portal.accounts.models import nir_key
from records import services as records
from records.models import Prescription
from tests.factories import CareLinkFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

BODY = "1850675123456"


@pytest.fixture
def people(team, other_team):
    """Patients of the team, and one of another team who must never be found."""

    def linked(first, last, birth=datetime.date(1980, 1, 1), ins=None, to=team, birth_name=""):
        patient = PatientFactory(
            user=None, first_name=first, last_name=last, birth_date=birth, ins=ins, birth_name=birth_name
        )
        CareLinkFactory(patient=patient, team=to)
        return patient

    return {
        "helene": linked("Hélène", "Lefèvre", ins=BODY + nir_key(BODY)),
        "eloise": linked("Éloïse", "Leroy", birth=datetime.date(1992, 3, 4), birth_name="Martinez"),
        "marc": linked("Marc", "Hélin"),
        "other": linked("Hélène", "Lefebvre", to=other_team),
    }


def search(client, **fields):
    client.post(reverse("careteams:patient_list"), fields)
    return client.get(reverse("careteams:patient_list"))


def found(response):
    return {patient.full_name for patient in response.context["page"].object_list}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "hel"}, {"Hélène Lefèvre", "Marc Hélin"}),  # first or last name, accents aside
        ({"name": "HÉL lef"}, {"Hélène Lefèvre"}),  # every word must start a name
        ({"name": "elo"}, {"Éloïse Leroy"}),
        ({"name": "martínez"}, {"Éloïse Leroy"}),  # her birth name, though she uses another
        ({"name": "elo mart"}, {"Éloïse Leroy"}),
        ({"name": "lène"}, set()),  # a prefix, not anywhere in the name
        ({"ins": f"{BODY[:1]} {BODY[1:7]} {BODY[7:]} {nir_key(BODY)}"}, {"Hélène Lefèvre"}),
        ({"birth_date": "1992-03-04"}, {"Éloïse Leroy"}),
        ({"name": "l", "birth_date": "1980-01-01"}, {"Hélène Lefèvre"}),
    ],
)
def test_search_finds_the_teams_patients_only(client, login, clinician, people, fields, expected):
    login(clinician)
    assert found(search(client, **fields)) == expected


def test_search_terms_stay_out_of_the_url(client, login, clinician, people):
    login(clinician)
    response = client.post(reverse("careteams:patient_list"), {"name": "Lefèvre", "ins": BODY})
    assert response["Location"] == reverse("careteams:patient_list")
    page = client.get(reverse("careteams:patient_list"), {"page": 1})
    assert found(page) == set()  # the INS and the name both apply
    assert "Lefèvre" in page.content.decode()  # kept in the form
    cleared = client.post(reverse("careteams:patient_list"), {"clear": "1"})
    assert cleared.status_code == 302
    assert len(found(client.get(reverse("careteams:patient_list")))) == 3


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_search_fields_are_written_as_the_form_writes_them(client, login, clinician, people, language):
    """With no search kept, the search's fields are written once per language
    (portal.widgets.empty_form_html); a kept search is written anew: each visit shows
    what the form, built then, writes, whatever the visits before it showed; a kept search
    that no longer holds shows its errors."""
    from django.template.loader import render_to_string
    from django.utils import translation

    from portal.careteams.forms import PatientSearchForm
    from portal.careteams.views import SEARCH_SESSION_KEY

    login(clinician)
    client.cookies["django_language"] = language
    url = reverse("careteams:patient_list")
    kept_searches = [
        None,
        {"name": "hél <b>", "ins": "", "birth_date": "", "unread": "", "new_results": ""},
        {"name": "", "ins": "", "birth_date": "1992-03-04", "unread": "on", "new_results": "on"},
        {"name": "", "ins": "", "birth_date": "2026-13-45", "unread": "", "new_results": ""},  # no such day
        None,
    ]
    shown_errors = []
    for kept in kept_searches:
        session = client.session
        session[SEARCH_SESSION_KEY] = kept
        session.save()
        page = client.get(url).content.decode()
        with translation.override(language):
            form = PatientSearchForm(kept)
            assert render_to_string("careteams/patient_search_fields.html", {"form": form}) in page
        shown_errors.append("error-summary" in page)
        assert shown_errors[-1] == bool(kept and form.errors)
    assert shown_errors == [False, False, False, True, False]
    assert 'value="hél &lt;b&gt;"' not in page


def test_unread_filter_lists_patients_with_unread_messages(client, login, clinician, team, people):
    helene = people["helene"]
    author = UserFactory()
    helene.user = author
    helene.save(update_fields=["user"])
    messaging.start_conversation(
        author=author, patient=helene, team=team, subject="Question", kind="question", body="?"
    )
    login(clinician)
    assert found(search(client, unread="on")) == {"Hélène Lefèvre"}


def test_search_query_count_does_not_grow_with_patients(client, login, clinician, team, people):
    login(clinician)
    search(client, name="l")

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("careteams:patient_list")).status_code == 200
        return len(ctx)

    few = count()
    for index in range(10):
        CareLinkFactory(team=team, patient=PatientFactory(user=None, first_name=f"Luc{index}", last_name="Petit"))
    assert count() == few


# --- The patient's page: complete history, paged by cursor --------------------------------


@pytest.fixture
def long_history(patient, clinician, team):
    for month in range(1, 13):
        records.add_lab_report(
            author=clinician, team=team, patient=patient, title=f"Bilan {month:02d}",
            collected_on=datetime.date(2025, month, 1),
            observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}],
        )  # fmt: skip
    Prescription.objects.bulk_create(
        Prescription(patient=patient, medication=f"Médicament {n:02d}", dosage="1", frequency="1/j",
                     start_date=datetime.date(2025, 1, n + 1), prescriber=clinician, team=team)
        for n in range(30)
    )  # fmt: skip


def test_the_patients_results_page_shows_every_lab_report_page_by_page(client, login, clinician, patient, long_history):
    login(clinician)
    url = reverse("careteams:patient_results", args=[patient.pk])
    with CaptureQueriesContext(connection) as ctx:
        first = client.get(url)
    assert not [q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper() or "OFFSET" in q["sql"].upper()]
    titles = [report.title for report in first.context["page"].object_list]
    assert titles == [f"Bilan {month:02d}" for month in range(12, 2, -1)]
    assert first.context["page"].newer is None
    second = client.get(url, {"older": first.context["page"].older})
    assert [report.title for report in second.context["page"].object_list] == ["Bilan 02", "Bilan 01"]
    assert second.context["page"].older is None
    newer = second.context["page"].newer
    assert f'href="?newer={newer}#results-title" rel="prev"' in second.content.decode()
    back = client.get(url, {"newer": newer})
    assert [report.title for report in back.context["page"].object_list] == titles
    # A cursor that is not a row of this record starts from the first page.
    assert client.get(url, {"older": "999999"}).context["page"].object_list[0].title == "Bilan 12"


@pytest.mark.parametrize("page", ["prescriptions", "results"])
def test_a_deep_page_of_each_history_costs_what_the_first_does(client, login, clinician, patient, long_history, page):
    login(clinician)
    url = reverse(f"careteams:patient_{page}", args=[patient.pk])
    older = client.get(url).context["page"].older
    assert older is not None
    with CaptureQueriesContext(connection) as at_first:
        client.get(url)
    with CaptureQueriesContext(connection) as deeper:
        client.get(url, {"older": older})
    assert len(deeper) == len(at_first) + 1  # the cursor's row, by primary key


def test_the_patients_page_gives_each_confidentiality_form_its_own_token(client, login, clinician, patient, team):
    import re

    from records.models import Document, LabReport

    Document.objects.create(
        patient=patient, title="Compte rendu <1>", category="report", care_date=datetime.date(2025, 1, 1),
        author=clinician, author_team=team, confidential=True, content_type="application/pdf", size=1,
        sha256="0" * 64, key_id="dev", file_name="x", status="ready",
    )  # fmt: skip
    records.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan", collected_on=datetime.date(2025, 1, 1),
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}],
    )  # fmt: skip
    Prescription.objects.create(patient=patient, medication="Médicament", dosage="1", frequency="1/j",
                                start_date=datetime.date(2025, 1, 1), prescriber=clinician, team=team)  # fmt: skip
    login(clinician)
    pages = [
        reverse(f"careteams:patient_{name}", args=[patient.pk]) for name in ("documents", "results", "prescriptions")
    ]
    page = "".join(client.get(url).content.decode() for url in pages)
    document, report = Document.objects.get(patient=patient), LabReport.objects.get(patient=patient)
    prescription = Prescription.objects.get(patient=patient)
    for kind, pk in (("document", document.pk), ("lab_report", report.pk), ("prescription", prescription.pk)):
        assert reverse("records:set_confidential", args=[kind, pk]) in page
    # The confidential document's form lifts it; its label is escaped.
    assert '<span class="visually-hidden"> : Compte rendu &lt;1&gt;</span>' in page
    assert page.count('name="confidential" value="0"') == 1 and page.count('name="confidential" value="1"') == 2
    tokens = re.findall(r'name="form_token" value="([^"]+)"', page)
    assert len(tokens) >= 3 and len(set(tokens)) == len(tokens)
    assert page.count('name="csrfmiddlewaretoken"') >= 3


def test_the_patients_results_page_query_count_does_not_grow_with_history(client, login, clinician, patient, team):
    login(clinician)
    url = reverse("careteams:patient_results", args=[patient.pk])

    def add(n):
        for index in range(n):
            records.add_lab_report(
                author=clinician, team=team, patient=patient, title=f"Bilan {index}",
                collected_on=datetime.date(2024, 1, 1) + datetime.timedelta(days=index),
                observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}],
            )  # fmt: skip

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx)

    add(2)
    client.get(url)  # warm the session
    few = count()
    add(20)
    assert count() == few


def test_new_results_filter_lists_results_the_team_has_not_seen(client, login, clinician, team, other_team, people):
    from tests.factories import ClinicianFactory

    helene, marc = people["helene"], people["marc"]
    CareLinkFactory(patient=helene, team=other_team)
    CareLinkFactory(patient=marc, team=other_team)
    lab = ClinicianFactory(teams=[other_team])
    for patient in (helene, marc):
        records.add_lab_report(
            author=lab, team=other_team, patient=patient, title="Bilan", collected_on=datetime.date(2026, 11, 2),
            observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}],
        )  # fmt: skip
    # The team's own report is no news to it.
    records.add_lab_report(
        author=clinician, team=team, patient=people["eloise"], title="Bilan", collected_on=datetime.date(2026, 11, 2),
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}],
    )  # fmt: skip
    login(clinician)
    assert found(search(client, new_results="on")) == {"Hélène Lefèvre", "Marc Hélin"}
    results = reverse("careteams:patient_results", args=[marc.pk])
    tab = f'<a href="{results}">Résultats d’analyses'
    new = f'{tab} <span class="badge-new">Nouveau</span></a>'
    for page in ("detail", "documents", "prescriptions"):  # they show no result: the tab says there are new ones
        assert new in client.get(reverse(f"careteams:patient_{page}", args=[marc.pk])).content.decode(), page
    listed = search(client, new_results="on")
    assert found(listed) == {"Hélène Lefèvre", "Marc Hélin"}
    assert f'href="{results}"' in listed.content.decode()  # found for its results: opened at its results
    client.get(results)  # opened: seen
    assert found(client.get(reverse("careteams:patient_list"))) == {"Hélène Lefèvre"}
    summary = client.get(reverse("careteams:patient_detail", args=[marc.pk])).content.decode()
    assert f"{tab}</a>" in summary and new not in summary


def test_each_row_names_the_clinicians_teams_the_patient_is_linked_to(client, login, team, other_team, people):
    """The "Care teams" column: the patient's active links with the clinician's own teams,
    by name; never another team's link, nor an ended one."""
    from portal.careteams.models import CareLink
    from tests.factories import CareTeamFactory, ClinicianFactory

    second, left, foreign = CareTeamFactory(name="Aaa cabinet"), CareTeamFactory(name="Ccc"), other_team
    clinician = ClinicianFactory(teams=[team, second, left])
    CareLinkFactory(patient=people["helene"], team=second)
    CareLinkFactory(patient=people["helene"], team=foreign)
    CareLinkFactory(patient=people["helene"], team=left, status=CareLink.Status.ENDED)
    login(clinician)
    response = client.get(reverse("careteams:patient_list"))
    page = response.content.decode()
    detail = reverse("careteams:patient_detail", args=[0]).replace("0", "(\\d+)")
    rows = dict(re.findall(rf'<a href="{detail}">.*?<td data-label="[^"]*">([^<]*)</td>\s*</tr>', page, re.S))
    assert rows[str(people["helene"].pk)] == f"Aaa cabinet, {team.name}"
    assert rows[str(people["marc"].pk)] == team.name
    assert str(people["other"].pk) not in rows
    assert [t.name for t in response.context["teams"]] == sorted([team.name, "Aaa cabinet", "Ccc"])
