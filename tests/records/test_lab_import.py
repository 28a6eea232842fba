"""Lab reports imported from a CSV file: stored whole or refused, every row checked
by the rules of a row typed in, errors named by line and column."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from records.models import LabReport, Observation

pytestmark = pytest.mark.django_db
HEADER = "loinc,name,value,unit,low,high\n"


def post_csv(client, patient, text, name="bilan.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        reverse("records:add_lab_report", args=[patient.pk]),
        {"title": "Bilan", "collected_on": "2026-11-01", "csv_file": SimpleUploadedFile(name, data),
         "obs-TOTAL_FORMS": "0", "obs-INITIAL_FORMS": "0"},
    )  # fmt: skip


def csv_errors(response):
    assert response.status_code == 200
    return response.context["form"].errors["csv_file"]


def rows(count):
    return "".join(f"718-7,Hémoglobine {n},{n % 200}.123,g/dL,12,16\n" for n in range(1, count + 1))


def test_a_csv_over_the_byte_limit_is_refused_whole_and_says_the_limit(client, login, clinician, patient):
    """The review's 100,000-row file (3.7 MB) was cut at 1,000,000 bytes mid-number."""
    login(clinician)
    text = HEADER + rows(100_000)
    assert 3_500_000 < len(text.encode()) < 4_500_000
    errors = csv_errors(post_csv(client, patient, text))
    size = f"{len(text.encode()):,}".replace(",", "\xa0")
    assert errors == [
        f"Ce fichier est trop volumineux : {size} octets, au-delà de la limite de 1 Mo (1\xa0048\xa0576 octets)."
    ]
    assert not LabReport.objects.exists() and not Observation.objects.exists()


def test_a_csv_over_the_row_limit_is_refused(client, login, clinician, patient, settings):
    settings.LAB_CSV_MAX_ROWS = 50
    login(clinician)
    errors = csv_errors(post_csv(client, patient, HEADER + rows(51)))
    assert errors == [
        "Ce fichier CSV a plus de 50 lignes, la limite pour un compte rendu : "
        "répartissez-le en plusieurs comptes rendus."
    ]
    assert not LabReport.objects.exists()


def test_a_csv_at_the_limit_is_stored_whole(client, login, clinician, patient, settings):
    settings.LAB_CSV_MAX_ROWS = 50
    login(clinician)
    text = HEADER + rows(50)
    assert post_csv(client, patient, text).status_code == 302
    assert Observation.objects.count() == 50
    assert Observation.objects.get(name="Hémoglobine 50").value == Decimal("50.123")


def test_the_form_states_the_limits(client, login, clinician, patient):
    login(clinician)
    page = client.get(reverse("records:add_lab_report", args=[patient.pk])).content.decode()
    assert "1\xa0000 lignes et 1 Mo au maximum" in page
    assert 'aria-describedby="id_csv_file_helptext"' in page


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "loinc\n718-7\n",
            "Il manque au fichier CSV ces colonnes : name / nom / libellé / libelle / analyse, value / valeur / "
            "résultat / resultat, unit / unité / unite, low / min / bas, high / max / haut.",
        ),
        ("nom;valeur;unité;min;max\nHb;13;g/dL;12;16\n", "Il manque au fichier CSV ces colonnes : loinc / code loinc."),
        (HEADER + "718-7,Hb\x00,13,g/dL,12,16\n", "Ligne 2, colonne name : Le caractère nul n’est pas autorisé."),
        (HEADER + "718-7,Hb,1e20,g/dL,12,16\n", "Ligne 2, colonne value : Assurez-vous qu’il n’y a pas plus de 12 chiffres au total."),
        (HEADER + "718-7,Hb,123456789012345,g/dL,,\n", "Ligne 2, colonne value : Assurez-vous qu’il n’y a pas plus de 12 chiffres au total."),
        (HEADER + "718-7,Hb,13,g/dL,12,1e20\n", "Ligne 2, colonne high : Assurez-vous qu’il n’y a pas plus de 12 chiffres au total."),
        (HEADER + "718-7,Hb,1e-30,g/dL,,\n", "Ligne 2, colonne value : Assurez-vous qu’il n’y a pas plus de 12 chiffres au total."),
        (HEADER + "718-7,Hb,0.00001,g/dL,,\n", "Ligne 2, colonne value : Assurez-vous qu’il n’y a pas plus de 4 chiffres après la virgule."),
        (HEADER + f"718-7,{'H' * 131_073},13,g/dL,,\n", "La ligne 2 ne peut pas être lue : un champ est trop long ou un guillemet est mal placé."),
        (HEADER + "718-7,\"Hb\"x,13,g/dL,,\n", "La ligne 2 ne peut pas être lue : un champ est trop long ou un guillemet est mal placé."),
        (HEADER + f"718-7,{'H' * 121},13,g/dL,,\n", "Ligne 2, colonne name : Assurez-vous que cette valeur comporte au plus 120 caractères (actuellement 121)."),
        (HEADER, "Le fichier CSV ne contient aucun résultat."),
    ],
    ids=["header-without-delimiter", "french-header-without-loinc", "nul", "1e20", "15-digits", "1e20-limit", "1e-30", "5-decimals",
         "field-over-131072", "stray-quote", "name-too-long", "no-rows"],
)  # fmt: skip
def test_hostile_csv_is_refused_with_the_line_and_column(client, login, clinician, patient, text, error):
    login(clinician)
    assert csv_errors(post_csv(client, patient, text)) == [error]
    assert not LabReport.objects.exists()


def test_every_bad_line_is_named_and_nothing_is_saved(client, login, clinician, patient):
    login(clinician)
    text = HEADER + "718-7,Hb,13,g/dL,12,16\n718-7,Hb,abc,g/dL,12,16\n\n,X,1,,,\n2160-0,Créatinine,11,mg/L,12,6\n"
    assert csv_errors(post_csv(client, patient, text)) == [
        "Ligne 3, colonne value : Saisissez un nombre.",
        "Ligne 5, colonne loinc : Ce champ est obligatoire.",
        "Ligne 6, colonne high : La limite supérieure est inférieure à la limite inférieure.",
    ]
    assert not LabReport.objects.exists() and not Observation.objects.exists()


def test_many_bad_lines_show_the_first_twenty_and_a_count(client, login, clinician, patient):
    login(clinician)
    errors = csv_errors(post_csv(client, patient, HEADER + "718-7,Hb,x,g/dL,,\n" * 100))
    assert len(errors) == 21
    assert errors[0] == "Ligne 2, colonne value : Saisissez un nombre."
    assert errors[-1] == "… et 80 autres erreurs."


def test_doubled_quotes_are_one_quote_as_rfc_4180_says(client, login, clinician, patient):
    login(clinician)
    text = 'loinc;name;value;unit;low;high\r\n718-7;"Hemoglobine ""totale""";13,5;"g/dL";12;16\r\n'
    assert post_csv(client, patient, text).status_code == 302
    observation = Observation.objects.get()
    assert (observation.name, observation.value, observation.unit) == ('Hemoglobine "totale"', Decimal("13.5"), "g/dL")


def test_french_excels_semicolon_csv_in_windows_1252_with_french_headings_is_imported(
    client, login, clinician, patient
):
    """What Excel saves as "CSV (séparateur : point-virgule)" on a French Windows: Windows-1252
    text, semicolons, decimal commas, the columns named in French."""
    login(clinician)
    text = "Code LOINC;Libellé;Valeur;Unité;Min;Max\r\n2160-0;Créatinine;9,5;mg/L;6;12\r\n718-7;Hémoglobine;13,2;g/dL;12;16\r\n"
    assert post_csv(client, patient, text.encode("cp1252")).status_code == 302
    assert sorted(Observation.objects.values_list("loinc", "name", "value", "unit", "low", "high")) == [
        ("2160-0", "Créatinine", Decimal("9.5"), "mg/L", Decimal(6), Decimal(12)),
        ("718-7", "Hémoglobine", Decimal("13.2"), "g/dL", Decimal(12), Decimal(16)),
    ]


def test_errors_name_the_columns_as_the_file_heads_them(client, login, clinician, patient):
    login(clinician)
    text = "loinc;nom;valeur;unité;min;max\n718-7;Hb;abc;g/dL;12;16\n"
    assert csv_errors(post_csv(client, patient, text)) == ["Ligne 2, colonne valeur : Saisissez un nombre."]


def test_a_file_that_is_not_text_is_refused(client, login, clinician, patient):
    login(clinician)
    assert csv_errors(post_csv(client, patient, HEADER.encode() + b"\x81\x8d\x8f\x90\x9d\n")) == [
        "Le fichier CSV doit être du texte UTF-8."
    ]
    assert not LabReport.objects.exists()


def test_a_value_the_field_cannot_hold_is_refused_in_the_form_too(client, login, clinician, patient):
    login(clinician)
    data = {"title": "Bilan", "collected_on": "2026-11-01", "obs-TOTAL_FORMS": "1", "obs-INITIAL_FORMS": "0",
            "obs-0-loinc": "2160-0", "obs-0-name": "Créatinine", "obs-0-value": "1e-30", "obs-0-unit": "mg/L"}  # fmt: skip
    response = client.post(reverse("records:add_lab_report", args=[patient.pk]), data)
    assert response.context["formset"][0].errors == {
        "value": ["Assurez-vous qu’il n’y a pas plus de 12 chiffres au total."]
    }
    assert not LabReport.objects.exists()
