"""A patient's record for their care team is four pages: the summary (identity, care
teams, representatives, appointments, medical profile) and the documents, prescriptions
and lab results, each a history paged by cursor. Each page says whose record it is and
which part it is, is logged in the patient's access history as what it shows, and an
action on an item comes back to the page that lists it."""

import datetime
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from portal.audit.models import AccessLog
from records import services
from records.models import Allergy, Document, Measurement, Prescription

pytestmark = pytest.mark.django_db

PAGES = {  # the page, what its access-log row says it showed
    "detail": AccessLog.Action.VIEW_RECORD,
    "documents": AccessLog.Action.LIST_DOCUMENTS,
    "prescriptions": AccessLog.Action.VIEW_PRESCRIPTIONS,
    "results": AccessLog.Action.LIST_RESULTS,
}


@pytest.mark.parametrize("page", PAGES)
def test_each_page_names_the_patient_marks_its_tab_and_is_logged_as_what_it_shows(
    client, login, clinician, patient, page
):
    login(clinician)
    url = reverse(f"careteams:patient_{page}", args=[patient.pk])
    response = client.get(url)
    html = response.content.decode()
    heading = re.search(r"<h1>(.*?)</h1>", html, re.S).group(1)
    assert patient.last_name.upper() in heading and patient.first_name in heading
    assert patient.birth_date.strftime("%d/%m/%Y") in heading  # the same name can be two people
    tabs = re.search(r'<nav class="record-tabs"[^>]*>(.*?)</nav>', html, re.S).group(1)
    links = re.findall(r'<a href="([^"]+)"', tabs)
    assert links == [reverse(f"careteams:patient_{name}", args=[patient.pk]) for name in PAGES]
    assert re.findall(r'<a href="([^"]+)" aria-current="page"', tabs) == [url]
    row = AccessLog.objects.get(patient=patient)
    assert (row.actor, row.action, row.target) == (clinician, PAGES[page], "")


@pytest.fixture
def published(clinician, team, patient):
    """A lab report, a prescription and an allergy the clinician's team wrote."""
    report = services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan", collected_on=datetime.date(2026, 10, 1),
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}],
    )  # fmt: skip
    prescription = Prescription.objects.create(
        patient=patient, medication="Ramipril", dosage="1", frequency="1/j", start_date=datetime.date(2026, 1, 1),
        prescriber=clinician, team=team,
    )  # fmt: skip
    return report, prescription, Allergy.objects.create(patient=patient, author=clinician, team=team, substance="Iode")


def test_the_confidentiality_of_an_item_comes_back_to_the_page_that_lists_it(
    client, login, clinician, patient, clinician_document, published
):
    report, prescription, allergy = published
    login(clinician)
    for kind, item, page in (
        ("document", clinician_document, "documents"),
        ("lab_report", report, "results"),
        ("prescription", prescription, "prescriptions"),
        ("allergy", allergy, "detail"),
    ):
        page_url = reverse(f"careteams:patient_{page}", args=[patient.pk])
        toggle = reverse("records:set_confidential", args=[kind, item.pk])
        assert toggle in client.get(page_url).content.decode(), kind
        response = client.post(toggle, {"confidential": "1"})
        assert response["Location"] == page_url, kind
        item.refresh_from_db()
        assert item.confidential, kind


def test_what_a_care_team_adds_is_shown_on_the_page_that_lists_it(client, login, clinician, patient):
    login(clinician)
    response = client.post(
        reverse("records:add_prescription", args=[patient.pk]),
        {"medication": "Ramipril", "dosage": "5 mg", "frequency": "1/j", "route": "oral", "start_date": "2026-01-01"},
    )
    url = reverse("careteams:patient_prescriptions", args=[patient.pk])
    assert response["Location"] == url
    assert "Ramipril" in client.get(url).content.decode()


@pytest.mark.parametrize("cursor", ["older", "newer"])
@pytest.mark.parametrize("value", ["nonsense", "-1", "99999999", "other patient's"])
def test_a_cursor_that_is_not_one_of_the_records_rows_gives_the_first_page(
    client, login, clinician, team, patient, other_patient, cursor, value
):
    documents = [
        Document.objects.create(
            patient=owner,
            title=f"{owner.last_name} {day}",
            category="report",
            care_date=datetime.date(2026, 1, day),
            author=clinician,
            author_team=team,
            content_type="application/pdf",
            size=1,
            sha256="0" * 64,
            key_id="dev",
            file_name="x",
            status="ready",
        )
        for owner in (patient, other_patient)
        for day in range(1, 30)
    ]
    theirs = next(document for document in documents if document.patient_id == other_patient.pk)
    login(clinician)
    url = reverse("careteams:patient_documents", args=[patient.pk])
    first = client.get(url)
    answer = client.get(url, {cursor: theirs.pk if value == "other patient's" else value})
    assert answer.status_code == 200
    assert [d.pk for d in answer.context["page"].object_list] == [d.pk for d in first.context["page"].object_list]
    assert other_patient.last_name not in answer.content.decode()


def test_each_form_and_page_about_an_item_leads_back_to_the_page_that_lists_it(
    client, login, clinician, patient, clinician_document, published
):
    report, prescription, allergy = published
    observation = report.observations.get()
    record = {page: reverse(f"careteams:patient_{page}", args=[patient.pk]) for page in PAGES}
    login(clinician)
    for url, page in (
        (reverse("records:clinician_upload", args=[patient.pk]), "documents"),
        (reverse("records:document", args=[clinician_document.pk]), "documents"),
        (reverse("records:withdraw_document", args=[clinician_document.pk]), "documents"),
        (reverse("records:add_prescription", args=[patient.pk]), "prescriptions"),
        (reverse("records:stop_prescription", args=[prescription.pk]), "prescriptions"),
        (reverse("records:add_lab_report", args=[patient.pk]), "results"),
        (reverse("records:correct_observation", args=[observation.pk]), "results"),
        (reverse("records:observation_history", args=[observation.pk]), "results"),
        (reverse("records:clinician_add_profile_entry", args=[patient.pk, "allergy"]), "detail"),
        (reverse("records:withdraw_profile_entry", args=["allergy", allergy.pk]), "detail"),
    ):
        html = client.get(url).content.decode()
        assert f'<a href="{record[page]}">← {patient.full_name}</a>' in html, url


def test_a_withdrawn_document_has_no_confidentiality_control(
    client, login, clinician, team, patient, clinician_document
):
    toggle = reverse("records:set_confidential", args=["document", clinician_document.pk])
    url = reverse("careteams:patient_documents", args=[patient.pk])
    login(clinician)
    assert toggle in client.get(url).content.decode()
    services.withdraw_document(actor=clinician, team=team, document=clinician_document, reason="Mauvais dossier")
    assert toggle not in client.get(url).content.decode()


def test_the_summary_nests_the_profile_under_its_heading(client, login, clinician, patient):
    login(clinician)
    summary = client.get(reverse("careteams:patient_detail", args=[patient.pk])).content.decode()
    levels = re.findall(r"<h(\d)[^>]*>([^<]+)<", summary)
    profile = levels.index(("2", "Profil médical"))
    assert levels[profile + 1 :] == [("3", "Allergies"), ("3", "Maladies et antécédents"), ("3", "Vaccinations"),
                                     ("3", "Mesures")]  # fmt: skip
    login(patient)
    own = re.findall(r"<h(\d)[^>]*>([^<]+)<", client.get(reverse("records:profile")).content.decode())
    assert ("2", "Allergies") in own and ("2", "Mesures") in own  # under the page's own title


def test_a_profile_entrys_form_is_logged_in_words_not_codes(client, login, clinician, team, patient):
    pressure = Measurement.objects.create(
        patient=patient, author=clinician, team=team, kind="blood_pressure", value=Decimal("118.00"),
        value2=Decimal("76"), measured_on=datetime.date(2026, 10, 1),
    )  # fmt: skip
    login(clinician)
    client.get(reverse("records:withdraw_profile_entry", args=["measurement", pressure.pk]))
    assert AccessLog.objects.get(patient=patient).target == "Tension artérielle (mmHg) — 118/76 — 01/10/2026"


def test_a_late_result_of_another_team_is_shown_before_its_reading_makes_it_seen(
    client, login, clinician, team, other_team, patient
):
    from portal.careteams.models import CareLink
    from tests.factories import ClinicianFactory

    CareLink.objects.create(patient=patient, team=other_team, started_on=datetime.date(2026, 1, 1))
    glucose = [{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}]
    for day in range(1, 13):  # more than a page of the team's own
        services.add_lab_report(author=clinician, team=team, patient=patient, title=f"Bilan {day:02d}",
                                collected_on=datetime.date(2026, 10, day), observations=glucose)  # fmt: skip
    url = reverse("careteams:patient_results", args=[patient.pk])
    login(clinician)
    assert "Nouveau" not in client.get(url).content.decode()  # the team's own reports are no news to it
    lab = ClinicianFactory(teams=[other_team])
    late = services.add_lab_report(author=lab, team=other_team, patient=patient, title="ECG rattrapé",
                                   collected_on=datetime.date(2019, 3, 1), observations=glucose)  # fmt: skip
    recent = services.add_lab_report(author=lab, team=other_team, patient=patient, title="Bilan du laboratoire",
                                     collected_on=datetime.date(2026, 11, 1), observations=glucose)  # fmt: skip
    page = client.get(url)
    html = page.content.decode()
    assert late not in page.context["page"].object_list  # its sample is old: the history has it pages later
    section = html.split('id="new-results-title"')[1].split("</section>")[0]
    assert "ECG rattrapé" in section and "Bilan du laboratoire" not in section  # this one is on the page
    new = '<span class="badge-new">Nouveau</span>'
    assert f"ECG rattrapé — 1er mars 2019 {new}" in html and f"Bilan du laboratoire — 1er novembre 2026 {new}" in html
    assert html.count(new) == 2 and html.count(f'id="report-{late.pk}"') == 1 and recent.title in html
    # Shown, so seen: the team's next look has nothing new.
    again = client.get(url).content.decode()
    assert new not in again and 'id="new-results-title"' not in again


def test_one_tests_history_does_not_make_the_new_reports_seen(client, login, clinician, team, other_team, patient):
    from portal.careteams.models import CareLink
    from tests.factories import ClinicianFactory

    CareLink.objects.create(patient=patient, team=other_team, started_on=datetime.date(2026, 1, 1))
    own = services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan lipidique", collected_on=datetime.date(2026, 10, 1),
        observations=[{"loinc": "2093-3", "name": "Cholestérol total", "value": Decimal("2"), "unit": "g/L"}],
    )  # fmt: skip
    services.add_lab_report(
        author=ClinicianFactory(teams=[other_team]), team=other_team, patient=patient, title="Numération",
        collected_on=datetime.date(2026, 11, 1),
        observations=[{"loinc": "718-7", "name": "Hémoglobine", "value": Decimal("9.1"), "unit": "g/dL"}],
    )  # fmt: skip
    summary = reverse("careteams:patient_detail", args=[patient.pk])
    new = '<span class="badge-new">Nouveau</span></a>'
    login(clinician)
    assert new in client.get(summary).content.decode()
    client.get(reverse("records:observation_history", args=[own.observations.get().pk]))  # cholesterol only
    assert new in client.get(summary).content.decode()  # the haemoglobin is still to be seen
    client.get(reverse("careteams:patient_results", args=[patient.pk]))
    assert new not in client.get(summary).content.decode()


@pytest.mark.parametrize("other_link", ["active", "ended", "blocked"])
@pytest.mark.parametrize("looked", ["never", "before", "after"])
@pytest.mark.parametrize("published_by", ["nobody", "own team", "other team", "both"])
def test_the_record_tabs_say_new_results_exactly_when_the_results_page_lists_some(
    client, login, clinician, team, other_team, patient, published_by, looked, other_link
):
    """The summary's "New" on the results tab (asked team by team of the record's other
    links: careteams.services.teams_with_results_new_to) says what the results page lists
    as new (results_new_to), whatever the other team's link has become since it published
    and whenever the clinician's team last looked."""
    from portal.careteams.models import CareLink
    from tests.factories import ClinicianFactory

    link = CareLink.objects.create(patient=patient, team=other_team, started_on=datetime.date(2026, 1, 1))
    glucose = [{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}]
    summary, results = (reverse(f"careteams:patient_{tab}", args=[patient.pk]) for tab in ("detail", "results"))
    login(clinician)
    if looked == "before":
        client.get(results)
    authors = {"own team": [(clinician, team)], "other team": [(ClinicianFactory(teams=[other_team]), other_team)]}
    authors["both"] = authors["own team"] + authors["other team"]
    for author, by in authors.get(published_by, []):
        services.add_lab_report(author=author, team=by, patient=patient, title=f"Bilan de {by.name}",
                                collected_on=datetime.date(2026, 10, 1), observations=glucose)  # fmt: skip
    if looked == "after":
        client.get(results)
    CareLink.objects.filter(pk=link.pk).update(status=other_link)
    said = '<span class="badge-new">' in client.get(summary).content.decode()
    listed = 'class="badge-new"' in client.get(results).content.decode()  # beside each new report
    assert said == listed == (published_by in ("other team", "both") and looked != "after")


def test_a_corrections_title_elides_de_before_a_vowel_in_french(client, login, clinician, team, patient):
    prescription = Prescription.objects.create(
        patient=patient, medication="Atorvastatine 10 mg", dosage="1", frequency="le soir",
        start_date=datetime.date(2026, 1, 1), prescriber=clinician, team=team,
    )  # fmt: skip
    login(clinician)
    page = client.get(reverse("records:replace_prescription", args=[prescription.pk])).content.decode()
    assert "<h1>Nouvelle version d’Atorvastatine 10 mg</h1>" in page


def test_confidentiality_comes_back_to_the_same_place_in_the_list_and_never_elsewhere(
    client, login, clinician, team, patient
):
    prescriptions = Prescription.objects.bulk_create(
        Prescription(patient=patient, medication=f"Médicament {n}", dosage="1", frequency="1/j",
                     start_date=datetime.date(2025, 1, 1) + datetime.timedelta(days=n), prescriber=clinician, team=team)
        for n in range(30)
    )  # fmt: skip
    url = reverse("careteams:patient_prescriptions", args=[patient.pk])
    login(clinician)
    second = f"{url}?older={client.get(url).context['page'].older}"
    page = client.get(second).content.decode()
    oldest = min(prescriptions, key=lambda prescription: prescription.start_date)
    toggle = reverse("records:set_confidential", args=["prescription", oldest.pk])
    assert f'<input type="hidden" name="back" value="{second.replace("&", "&amp;")}">' in page
    assert client.post(toggle, {"confidential": "1", "back": second})["Location"] == second
    for elsewhere in ("https://evil.example/", "//evil.example/care/", "javascript:alert(1)", ""):
        assert client.post(toggle, {"confidential": "0", "back": elsewhere})["Location"] == url, elsewhere


def test_the_confidentiality_form_written_once_a_page_is_the_templates(rf, clinician, team, patient):
    from django.template.loader import render_to_string

    from records import display

    request = rf.get("/care/patients/1/documents/?older=987654321&x={y}")
    request.user = clinician
    prescription = Prescription(pk=7, patient=patient, medication="<Ramipril>", confidential=True)
    written = str(display.confidential_forms(request)("prescription", prescription, prescription.medication))
    expected = render_to_string(
        "records/confidential_toggle.html",
        {"kind": "prescription", "item": prescription, "label": prescription.medication, "request": request},
        request=request,
    )
    token = 'name="form_token" value="[^"]+"'
    assert re.sub(token, "", re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", written)) == re.sub(
        token, "", re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", expected)
    )
    assert 'value="/care/patients/1/documents/?older=987654321&amp;x=%7By%7D"' in written  # the page itself, escaped


def test_new_reports_beyond_those_shown_are_said(client, login, clinician, team, other_team, patient, monkeypatch):
    from portal.careteams import views
    from portal.careteams.models import CareLink
    from tests.factories import ClinicianFactory

    monkeypatch.setattr(views, "NEW_RESULTS_SHOWN", 2)
    monkeypatch.setattr(views, "RESULTS_PAGE_SIZE", 1)
    CareLink.objects.create(patient=patient, team=other_team, started_on=datetime.date(2026, 1, 1))
    glucose = [{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}]
    services.add_lab_report(author=clinician, team=team, patient=patient, title="Bilan récent",
                            collected_on=datetime.date(2026, 11, 1), observations=glucose)  # fmt: skip
    lab = ClinicianFactory(teams=[other_team])
    for year in (2019, 2020, 2021, 2022):
        services.add_lab_report(author=lab, team=other_team, patient=patient, title=f"Ancien {year}",
                                collected_on=datetime.date(year, 1, 1), observations=glucose)  # fmt: skip
    login(clinician)
    html = client.get(reverse("careteams:patient_results", args=[patient.pk])).content.decode()
    section = html.split('id="new-results-title"')[1].split("</section>")[0]
    assert section.count('<span class="badge-new">Nouveau</span>') == 2  # the latest two to arrive
    assert "Ancien 2022" in section and "Ancien 2021" in section and "Ancien 2020" not in section
    assert "Et 2 autres nouveaux comptes rendus d’autres équipes, dans l’historique ci-dessous." in section


def test_a_profile_entry_says_who_declared_it(client, login, clinician, patient, team):
    """What the patient declared is told apart from what a professional wrote, on the
    care team's summary and on the patient's own profile."""
    services.add_profile_entry(entry=Allergy(patient=patient, substance="Arachide"), author=patient.user)
    services.add_profile_entry(entry=Allergy(patient=patient, substance="Pénicilline"), author=clinician, team=team)
    login(clinician)
    summary = client.get(reverse("careteams:patient_detail", args=[patient.pk])).content.decode()
    assert f"déclaré par {patient.user.get_full_name()}, pas par un professionnel, le" in summary
    assert f"({clinician.get_full_name()}, {team.name}," in summary
    login(patient)
    profile = client.get(reverse("records:profile")).content.decode()
    assert "ajouté par vous, le" in profile and "pas par un professionnel" not in profile


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_reports_written_by_the_view_escape_what_they_show(
    client, login, clinician, team, other_team, patient, language
):
    """records.display.REPORT: each report's heading, team and table, in the reader's
    language, with a hostile title and team name written as text, on a care team's
    results page and on the patient's."""
    from portal.careteams.models import CareLink
    from tests.factories import ClinicianFactory

    other_team.name = 'Labo <i>Nord</i> & "Sud"'
    other_team.save()
    CareLink.objects.create(patient=patient, team=other_team, started_on=datetime.date(2026, 1, 1))
    report = services.add_lab_report(
        author=ClinicianFactory(teams=[other_team]), team=other_team, patient=patient,
        title='<script>alert("x")</script> Bilan', collected_on=datetime.date(2026, 3, 1),
        observations=[{"loinc": "2345-7", "name": "Glucose <b>", "value": Decimal("1"), "unit": "g/L"}],
    )  # fmt: skip
    date, new = {"fr": ("1er mars 2026", "Nouveau"), "en": ("1 March 2026", "New")}[language]
    heading = f'&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Bilan — {date} <span class="badge-new">{new}</span>'
    pages = [
        (clinician, reverse("careteams:patient_results", args=[patient.pk]), f'<h3 id="report-{report.pk}">{heading}</h3>'),
        (patient, reverse("records:results"),
         f'<section class="card" aria-labelledby="report-{report.pk}">\n      <h2 id="report-{report.pk}">{heading}</h2>'),
    ]  # fmt: skip
    for reader, url, written in pages:
        login(reader)
        html = client.get(url, headers={"accept-language": language}).content.decode()
        assert written in html
        assert '<p class="notice">Labo &lt;i&gt;Nord&lt;/i&gt; &amp; &quot;Sud&quot;</p>' in html
        assert "Glucose &lt;b&gt;" in html and "<script>" not in html and "<i>Nord" not in html
        # Another team's report: no control for the clinician; none anywhere for the patient.
        assert 'name="confidential"' not in (html if reader == patient else html.split(f'id="report-{report.pk}"')[1])
