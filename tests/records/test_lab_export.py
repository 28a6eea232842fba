"""The lab results PDF (all results or a period, by report, a trend per test) and the
clinical resources of the FHIR bundle."""

import datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from records import export_builders, exports, pdf
from records.models import Allergy, Condition, Export, Measurement, Prescription, Vaccination
from records.services import add_lab_report
from tests.records.test_exports import request, text_of

pytestmark = pytest.mark.django_db

D = datetime.date


def glycemia_and_haemoglobin(glucose, haemoglobin):
    return [
        {"loinc": "2345-7", "name": "Glycémie", "unit": "g/L", "low": Decimal("0.70"), "high": Decimal("1.10"),
         "value": Decimal(glucose)},
        {"loinc": "718-7", "name": "Hémoglobine", "unit": "g/dL", "low": Decimal(12), "high": Decimal(16),
         "value": Decimal(haemoglobin)},
    ]  # fmt: skip


@pytest.fixture
def lab_history(patient, other_patient, clinician, other_clinician, team, other_team):
    """Three reports for the patient over a year and a half; one for another patient."""
    for day, glucose, haemoglobin in [(D(2025, 1, 10), "1.32", "13.1"), (D(2025, 6, 10), "0.95", "11.4"),
                                      (D(2026, 1, 10), "0.64", "14.2")]:  # fmt: skip
        add_lab_report(
            author=clinician, team=team, patient=patient, title=f"Bilan du {day:%d/%m/%Y}", collected_on=day,
            observations=glycemia_and_haemoglobin(glucose, haemoglobin),
        )  # fmt: skip
    add_lab_report(
        author=other_clinician, team=other_team, patient=other_patient, title="Bilan martial", collected_on=D(2025, 6, 1),
        observations=[{"loinc": "2276-4", "name": "Ferritine", "unit": "µg/L", "low": None, "high": None,
                       "value": Decimal("999.5")}],
    )  # fmt: skip


def test_all_results_grouped_by_report_with_a_trend_per_test(patient, lab_history, django_capture_on_commit_callbacks):
    export, created = request(patient, Export.Kind.LAB_RESULTS, {}, django_capture_on_commit_callbacks)
    assert created and export.state == Export.State.READY
    text = text_of(exports.read_export(export=export))
    assert "Camille Durand" in text and "Tous les résultats" in text and "6 valeurs dans 3 comptes rendus." in text
    by_report, trends = text.split("Évolution de chaque analyse")
    # Reports newest first, each with its values, ranges and flags in words.
    assert by_report.index("Bilan du 10/01/2026") < by_report.index("Bilan du 10/06/2025")
    assert by_report.index("Bilan du 10/06/2025") < by_report.index("Bilan du 10/01/2025")
    assert "1,32 g/L 0,7 – 1,1 g/L Élevé" in by_report
    assert "11,4 g/dL 12 – 16 g/dL Bas" in by_report
    assert "0,95 g/L 0,7 – 1,1 g/L Normal" in by_report
    # Each test's values, oldest first.
    glycemia = trends.split("Glycémie LOINC")[1].split("Hémoglobine LOINC")[0]
    assert glycemia.index("1,32") < glycemia.index("0,95") < glycemia.index("0,64")
    assert "LOINC 2345-7" in trends
    assert "Ferritine" not in text and "999" not in text and "Bilan martial" not in text


def test_a_corrected_value_says_so_in_the_pdfs_and_a_value_without_range_has_no_flag(
    patient, clinician, team, lab_history, django_capture_on_commit_callbacks
):
    from records.models import Observation
    from records.services import correct_observation

    glucose = Observation.objects.filter(patient=patient, loinc="2345-7").order_by("-collected_on").first()
    correct_observation(actor=clinician, team=team, observation=glucose, value=Decimal("0.66"), reason="Saisie")
    add_lab_report(
        author=clinician, team=team, patient=patient, title="Sans normes", collected_on=D(2026, 2, 1),
        observations=[{"loinc": "2093-3", "name": "Cholestérol", "unit": "g/L", "value": Decimal("1.9")}],
    )  # fmt: skip
    export, _ = request(patient, Export.Kind.LAB_RESULTS, {}, django_capture_on_commit_callbacks)
    text = text_of(exports.read_export(export=export))
    assert "0,66 g/L Corrigé le" in text
    assert "1,9 g/L — Glycémie" in text or "Cholestérol LOINC 2093-3 1,9 g/L —" in text
    assert "1,9 g/L — Normal" not in text
    patient.care_links.filter(team=team).update(started_on=D(2021, 9, 1))
    sections = {"sections": ["care_teams", "lab_results"]}
    summary, _ = request(patient, Export.Kind.SUMMARY, sections, django_capture_on_commit_callbacks)
    text = text_of(exports.read_export(export=summary))
    assert "0,66 g/L Corrigé le" in text
    # The care team's line says since when it cares for the patient, not when the row was written.
    assert f"{team.name} " in text and "01/09/2021" in text


def test_a_period_keeps_the_reports_collected_in_it(patient, lab_history, django_capture_on_commit_callbacks):
    options = {"from": "2025-05-01", "to": "2025-12-31"}
    export, _ = request(patient, Export.Kind.LAB_RESULTS, options, django_capture_on_commit_callbacks)
    text = text_of(exports.read_export(export=export))
    assert "Résultats du 01/05/2025 au 31/12/2025" in text
    assert "Bilan du 10/06/2025" in text and "0,95" in text
    assert "Bilan du 10/01/2025" not in text and "Bilan du 10/01/2026" not in text and "1,32" not in text
    since, _ = request(patient, Export.Kind.LAB_RESULTS, {"from": "2025-12-01"}, django_capture_on_commit_callbacks)
    assert "Résultats depuis le 01/12/2025" in text_of(exports.read_export(export=since))


def test_long_trends_are_cut_into_short_tables(patient, clinician, team, monkeypatch):
    monkeypatch.setattr(export_builders, "TREND_ROWS_PER_TABLE", 2)
    for month in range(1, 6):
        add_lab_report(
            author=clinician, team=team, patient=patient, title="Bilan", collected_on=D(2025, month, 1),
            observations=glycemia_and_haemoglobin("1.0", "13"),
        )  # fmt: skip
    context = export_builders.lab_results_context(user=patient.user, patient=patient)
    assert [len(chunk) for chunk in context["trends"][0]["chunks"]] == [2, 2, 1]
    assert context["count"] == 10 and len(context["reports"]) == 5
    # Each piece names its test in its header row: one cut by a page break still says which.
    html = export_builders.lab_results_html(user=patient.user, patient=patient)
    name = context["trends"][0]["name"]
    assert html.count(f'<th scope="col">Date · {name}</th>') == 3


def test_building_the_lab_results_takes_a_fixed_number_of_queries(patient, clinician, team, django_assert_num_queries):
    def build():
        return export_builders.lab_results_html(user=patient.user, patient=patient)

    add_lab_report(author=clinician, team=team, patient=patient, title="Bilan", collected_on=D(2025, 1, 1),
                   observations=glycemia_and_haemoglobin("1.0", "13"))  # fmt: skip
    with django_assert_num_queries(1) as few:  # one query, whatever the number of reports
        build()
    for month in range(2, 12):
        add_lab_report(author=clinician, team=team, patient=patient, title="Bilan", collected_on=D(2025, month, 1),
                       observations=glycemia_and_haemoglobin("1.0", "13"))  # fmt: skip
    with django_assert_num_queries(len(few.captured_queries)):
        assert build().count("<tr>") > 40


def test_lab_tables_have_fixed_column_widths(patient, lab_history):
    """Thousands of rows: WeasyPrint must not measure every cell to size the columns."""
    html = export_builders.lab_results_html(user=patient.user, patient=patient)
    assert html.count("<table") == html.count('<table class="lab-table">') == 3 + 2
    assert html.count("<colgroup>") == 5 and html.count("<col ") == 5 * 4
    assert ".lab-table { table-layout: fixed; }" in (settings.BASE_DIR / "static/pdf/carnet-pdf.css").read_text()


def test_the_collector_is_paused_while_rendering_and_restored_even_on_error():
    import gc

    assert gc.isenabled()
    with pytest.raises(ValueError), pdf.collector_paused():
        assert not gc.isenabled()
        raise ValueError
    assert gc.isenabled()
    gc.disable()
    try:
        with pdf.collector_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


# --- the request form -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"lab_from": "2025-12-01", "lab_to": "2025-01-01"}, "lab_to", "La fin de la période est avant son début."),
        (
            {"lab_from": "2020-01-01", "lab_to": "2020-12-31"},
            "lab_from",
            "Vous n’avez aucun résultat d’analyse sur cette période.",
        ),
        ({"lab_from": "2027-01-01"}, "lab_from", "Vous n’avez aucun résultat d’analyse sur cette période."),
        ({"lab_from": "31/31/2025"}, "lab_from", "Saisissez une date valide."),
        ({"lab_to": "demain"}, "lab_to", "Saisissez une date valide."),
    ],
)
def test_bad_periods_get_a_message_next_to_the_field_and_nothing_is_queued(
    client, login, patient, lab_history, data, field, message
):
    login(patient)
    response = client.post(reverse("exports:page"), {"kind": "lab_results", **data})
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    assert message in response.content.decode()
    assert not Export.objects.exists()


def test_no_results_at_all_is_said_plainly(client, login, patient):
    login(patient)
    response = client.post(reverse("exports:page"), {"kind": "lab_results"})
    assert response.status_code == 400
    assert response.context["form"].errors["kind"] == ["Vous n’avez encore aucun résultat d’analyse."]
    assert not Export.objects.exists()


def test_another_patients_results_do_not_count(client, login, other_patient, lab_history):
    """The other patient's only report is in June 2025: the patient's own don't fill their period."""
    login(other_patient)
    response = client.post(
        reverse("exports:page"), {"kind": "lab_results", "lab_from": "2025-01-01", "lab_to": "2025-01-31"}
    )
    assert response.status_code == 400 and not Export.objects.exists()


def test_request_from_the_page_with_a_period_and_reuse_of_the_same_one(client, login, patient, lab_history):
    login(patient)
    period = {"kind": "lab_results", "lab_from": "2025-01-01", "lab_to": "2025-12-31"}
    assert client.post(reverse("exports:page"), period).status_code == 302
    export = Export.objects.get()
    assert export.kind == "lab_results" and export.options == {"from": "2025-01-01", "to": "2025-12-31"}
    assert export.period == (D(2025, 1, 1), D(2025, 12, 31))
    client.post(reverse("exports:page"), period)  # still queued: the same export
    assert Export.objects.count() == 1
    client.post(reverse("exports:page"), {"kind": "lab_results"})  # all results: another one
    assert Export.objects.count() == 2
    page = client.get(reverse("exports:page")).content.decode()
    assert "Résultats d’analyses (PDF)" in page and "01/01/2025 – 31/12/2025" in page
    # Each downloads under its own name.
    names = [e.download_name() for e in Export.objects.order_by("pk")]
    assert names[0].startswith("carnet-resultats-biologie-du-2025-01-01-au-2025-12-31-") and names[1].startswith(
        "carnet-resultats-biologie-20"
    )
    assert names[0] != names[1]
    export.options = {"from": "2025-01-01"}
    assert export.download_name().startswith("carnet-resultats-biologie-depuis-le-2025-01-01-")
    # In the language the export was made in, whatever the language of the moment.
    export.language, export.options = "en", {"to": "2025-12-31"}
    assert export.download_name().startswith("carnet-lab-results-to-2025-12-31-")
    export.options = {"from": "2025-01-01", "to": "2025-12-31"}
    assert export.download_name().startswith("carnet-lab-results-2025-01-01-to-2025-12-31-")


@pytest.mark.parametrize("who", ["other_patient", "clinician", "other_clinician", "support"])
def test_only_the_patient_downloads_the_lab_results(
    request, client, login, patient, lab_history, who, django_capture_on_commit_callbacks
):
    export, _ = request_lab(patient, django_capture_on_commit_callbacks)
    login(patient)
    own = client.get(reverse("exports:download", args=[export.pk]))
    assert own.status_code == 200
    assert own["Content-Disposition"].startswith('attachment; filename="carnet-resultats-biologie-20')
    login(request.getfixturevalue(who))
    response = client.get(reverse("exports:download", args=[export.pk]))
    assert response.status_code == 404
    assert b"%PDF" not in response.content and b"Durand" not in response.content


def request_lab(patient, capture):
    return request(patient, Export.Kind.LAB_RESULTS, {}, capture)


# --- FHIR -------------------------------------------------------------------------


def test_fhir_bundle_holds_the_clinical_record_and_validates(patient, other_patient, clinician, team, lab_history):
    from fhir.resources.R4B.bundle import Bundle

    Prescription.objects.create(
        patient=patient, medication="Metformine 500 mg", dosage="1 comprimé", frequency="2 fois par jour",
        start_date=D(2025, 1, 1), prescriber=clinician, team=team,
    )  # fmt: skip
    entry = {"patient": patient, "author": clinician, "team": team}
    Allergy.objects.create(substance="Pénicilline", reaction="Urticaire", severity="severe", **entry)
    Condition.objects.create(name="Diabète de type 2", since=D(2019, 3, 1), **entry)
    Vaccination.objects.create(vaccine="DTP", date=D(2024, 5, 2), lot="AB12", **entry)
    Measurement.objects.create(kind="weight", value=Decimal("71.5"), measured_on=D(2026, 1, 1), **entry)
    Measurement.objects.create(kind="blood_pressure", value=128, value2=82, measured_on=D(2026, 1, 1), **entry)
    Allergy.objects.create(patient=other_patient, author=clinician, substance="Latex")

    bundle = export_builders.fhir_bundle(
        user=patient.user, patient=patient, documents=[], conversations=[], document_paths={}
    )
    assert Bundle.model_validate(bundle).type == "collection"
    resources = [entry["resource"] for entry in bundle["entry"]]
    kinds = [resource["resourceType"] for resource in resources]
    for kind, count in [("MedicationRequest", 1), ("DiagnosticReport", 3), ("AllergyIntolerance", 1),
                        ("Condition", 1), ("Immunization", 1), ("Observation", 6 + 2)]:  # fmt: skip
        assert kinds.count(kind) == count, kind

    by_id = {(r["resourceType"], r["id"]): r for r in resources}
    by_url = {entry["fullUrl"]: entry["resource"] for entry in bundle["entry"]}
    report = next(r for r in resources if r["resourceType"] == "DiagnosticReport")
    values = [by_url[ref["reference"]] for ref in report["result"]]
    assert all(url.startswith("urn:uuid:") for url in by_url)
    assert all(by_url[r["subject"]["reference"]]["resourceType"] == "Patient" for r in resources if "subject" in r)
    assert {v["code"]["coding"][0]["code"] for v in values} == {"2345-7", "718-7"}
    high = next(r for r in resources if r.get("valueQuantity", {}).get("value") == 1.32)
    assert high["interpretation"][0]["coding"][0]["code"] == "H"
    ucum = {"unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"}
    assert high["valueQuantity"] == {"value": 1.32, **ucum}
    assert high["referenceRange"] == [{"low": {"value": 0.7, **ucum}, "high": {"value": 1.1, **ucum}}]
    pressure = next(r for r in resources if r.get("code", {}).get("coding", [{}])[0].get("code") == "85354-9")
    assert [c["valueQuantity"]["value"] for c in pressure["component"]] == [128, 82]
    allergy = by_id[
        ("AllergyIntolerance", next(r["id"] for r in resources if r["resourceType"] == "AllergyIntolerance"))
    ]
    assert allergy["reaction"][0]["severity"] == "severe"
    text = str(bundle)
    assert "Latex" not in text and "Ferritine" not in text


def test_fhir_bundle_takes_a_fixed_number_of_queries(patient, clinician, team, django_assert_num_queries):
    def build():
        export_builders.fhir_bundle(
            user=patient.user, patient=patient, documents=[], conversations=[], document_paths={}
        )

    with django_assert_num_queries(7) as few:  # one per kind of resource
        build()
    for month in range(1, 6):
        add_lab_report(author=clinician, team=team, patient=patient, title="Bilan", collected_on=D(2025, month, 1),
                       observations=glycemia_and_haemoglobin("1.0", "13"))  # fmt: skip
        Vaccination.objects.create(
            patient=patient, author=clinician, team=team, vaccine="Grippe", date=D(2025, month, 1)
        )
    with django_assert_num_queries(len(few.captured_queries)):
        build()


def test_fhir_bundle_codes_only_what_is_valid(patient, clinician, team, settings):
    """LOINC only for a valid LOINC code, a local code under its system, UCUM only for a
    UCUM unit, an interpretation only against a range; the INS typed, official, with the
    test OID for fictitious NIRs."""
    settings.INS_TEST_IDENTITIES = True
    patient.ins = "285067512345639"
    patient.save(update_fields=["ins"])
    add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan", collected_on=D(2025, 1, 1),
        observations=[
            {"loinc": "718-8", "name": "Hb (code faux)", "unit": "g/dL", "value": Decimal(13), "low": None, "high": None},
            {"loinc": "HB-01", "code_system": "urn:oid:1.2.250.1.999.7", "name": "Hb locale", "unit": "µg/L",
             "value": Decimal(13), "low": Decimal(12), "high": Decimal(16)},
        ],
    )  # fmt: skip

    bundle = export_builders.fhir_bundle(
        user=patient.user, patient=patient, documents=[], conversations=[], document_paths={}
    )
    resources = {r.get("code", {}).get("text", ""): r for r in (e["resource"] for e in bundle["entry"])}
    wrong = next(r for text, r in resources.items() if text.startswith("Hb (code faux)"))
    assert "coding" not in wrong["code"] and "interpretation" not in wrong
    assert wrong["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    local = resources["Hb locale"]
    assert local["code"]["coding"][0] == {"system": "urn:oid:1.2.250.1.999.7", "code": "HB-01", "display": "Hb locale"}
    assert "system" not in local["valueQuantity"] and local["interpretation"][0]["coding"][0]["code"] == "N"
    identity = bundle["entry"][0]["resource"]
    assert identity["meta"]["profile"] == ["https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient"]
    assert identity["identifier"] == [
        {
            "use": "official",
            "type": {
                "coding": [{"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "INS-NIR"}]
            },
            "system": "urn:oid:1.2.250.1.213.1.4.10",
            "value": "285067512345639",
        }
    ]
