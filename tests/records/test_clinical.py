"""Prescriptions, lab results and the medical profile."""

import datetime
import re
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from messaging.models import Conversation
from portal.audit.models import AccessLog
from records import services
from records.models import Allergy, LabReport, Measurement, Observation, Prescription

pytestmark = pytest.mark.django_db
TODAY = datetime.date.today()


@pytest.fixture
def prescription(patient, clinician, team):
    return Prescription.objects.create(
        patient=patient, medication="Ramipril 5 mg", dosage="1 comprimé", frequency="le matin",
        start_date=TODAY - datetime.timedelta(days=30), renewable=True, prescriber=clinician, team=team,
    )  # fmt: skip


@pytest.fixture
def report(patient, clinician, team):
    return services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan sanguin", collected_on=TODAY,
        observations=[
            {"loinc": "2345-7", "name": "Glucose", "value": Decimal("1.32"), "unit": "g/L", "low": Decimal("0.70"), "high": Decimal("1.10")},
            {"loinc": "718-7", "name": "Hémoglobine", "value": Decimal("11.2"), "unit": "g/dL", "low": Decimal("12"), "high": Decimal("16")},
            {"loinc": "3016-3", "name": "TSH", "value": Decimal("2.1"), "unit": "mUI/L", "low": Decimal("0.4"), "high": Decimal("4")},
        ],
    )  # fmt: skip


def test_active_and_past_prescriptions(client, login, patient, clinician, team, prescription):
    Prescription.objects.create(
        patient=patient, medication="Amoxicilline", dosage="1 g", frequency="3 fois par jour",
        start_date=TODAY - datetime.timedelta(days=60), end_date=TODAY - datetime.timedelta(days=50),
        prescriber=clinician, team=team,
    )  # fmt: skip
    for medication, start in (("Vaccin antigrippal", 400), ("Kinésithérapie", 30)):  # not begun: to come, soonest first
        Prescription.objects.create(
            patient=patient, medication=medication, dosage="1", frequency="1/j", prescriber=clinician, team=team,
            start_date=TODAY + datetime.timedelta(days=start),
        )  # fmt: skip
    login(patient)
    response = client.get(reverse("records:prescriptions"))
    assert [p.medication for p in response.context["active"]] == ["Ramipril 5 mg"]
    assert [p.medication for p in response.context["upcoming"]] == ["Kinésithérapie", "Vaccin antigrippal"]
    assert [p.medication for p in response.context["past"].object_list] == ["Amoxicilline"]
    assert "Traitements à venir" in response.content.decode()


def test_in_force_is_is_active_for_every_combination(patient, clinician, team):
    """The query the prescriptions page and the dashboard read the treatments in force
    with (``in_force``) agrees with ``Prescription.is_active`` for every start, end, stop
    and replacement relative to today."""
    import itertools

    today = timezone.localdate()
    days = {"none": None, "past": today - datetime.timedelta(days=3), "today": today,
            "future": today + datetime.timedelta(days=3)}  # fmt: skip
    rows = []
    for start, end, stopped, replaced in itertools.product(["past", "today", "future"], days, days, [False, True]):
        prescription = Prescription.objects.create(
            patient=patient, medication=f"{start}/{end}/{stopped}/{replaced}", dosage="1", frequency="1",
            start_date=days[start], end_date=days[end], stopped_on=days[stopped], prescriber=clinician, team=team,
        )  # fmt: skip
        if replaced:
            Prescription.objects.create(
                patient=patient, medication="new version", dosage="1", frequency="1", start_date=today,
                prescriber=clinician, team=team, replaces=prescription, end_date=today - datetime.timedelta(days=30),
            )  # fmt: skip
        rows.append(prescription)
    in_force = set(
        Prescription.objects.filter(pk__in=[row.pk for row in rows]).in_force(today).values_list("pk", flat=True)
    )
    expected = {row.pk for row in Prescription.objects.filter(pk__in=[r.pk for r in rows]) if row.is_active(today)}
    assert in_force == expected and 0 < len(expected) < len(rows)


def test_past_prescriptions_and_appointments_page_by_cursor(client, login, patient, clinician, team):
    """The past treatments and the past appointments, a page at a time from "Older" links:
    every item once, newest first, the first page's without a link back."""
    from agenda.models import Appointment
    from agenda.views import PAST_PAGE_SIZE
    from records.views import PAGE_SIZE

    for i in range(PAGE_SIZE + 3):
        Prescription.objects.create(
            patient=patient, medication=f"Ancien {i}", dosage="1", frequency="1", prescriber=clinician, team=team,
            start_date=TODAY - datetime.timedelta(days=100 + i), end_date=TODAY - datetime.timedelta(days=90),
        )  # fmt: skip
    start = timezone.now() - datetime.timedelta(days=10)
    for i in range(PAST_PAGE_SIZE + 2):
        at = start - datetime.timedelta(days=i)
        Appointment.objects.create(patient=patient, team=team, starts_at=at, ends_at=at + datetime.timedelta(hours=1),
                                   with_whom="Dr Martin", created_by=clinician)  # fmt: skip
    login(patient)
    for url, size, name in (
        (reverse("records:prescriptions"), PAGE_SIZE, "medication"),
        (reverse("agenda:mine"), PAST_PAGE_SIZE, "starts_at"),
    ):
        seen, params = [], {}
        while True:
            response = client.get(url, params)
            page = response.context["past"]
            assert len(page.object_list) <= size and ("newer=" in response.content.decode()) == bool(params)
            seen += [getattr(item, name) for item in page.object_list]
            if page.older is None:
                break
            assert f'older={page.older}#past-title"' in response.content.decode()  # back to the list, not the top
            params = {"older": page.older}
        assert len(seen) == len(set(seen)) == (PAGE_SIZE + 3 if name == "medication" else PAST_PAGE_SIZE + 2)
        if name == "starts_at":
            assert seen == sorted(seen, reverse=True)
        else:
            assert seen == [f"Ancien {i}" for i in range(PAGE_SIZE + 3)]


def test_renewal_request_opens_one_renewal_conversation_with_the_team(client, login, patient, team, prescription):
    login(patient)
    first = client.post(reverse("records:request_renewal", args=[prescription.pk]))
    second = client.post(reverse("records:request_renewal", args=[prescription.pk]))
    conversation = Conversation.objects.get()
    assert first["Location"] == second["Location"] == reverse("messaging:conversation", args=[conversation.pk])
    assert (conversation.kind, conversation.team, conversation.prescription) == ("renewal", team, prescription)
    assert (
        conversation.messages.get().body == "Merci de renouveler mon ordonnance : Ramipril 5 mg, 1 comprimé, le matin."
    )
    page = client.get(first["Location"]).content.decode()
    assert "Ramipril 5 mg — 1 comprimé, le matin" in page


def test_a_renewal_request_of_a_prescription_without_frequency_says_none(client, login, patient, prescription):
    Prescription.objects.filter(pk=prescription.pk).update(frequency="")  # as its software sent it
    login(patient)
    page = client.get(client.post(reverse("records:request_renewal", args=[prescription.pk]))["Location"])
    assert (
        Conversation.objects.get().messages.get().body
        == "Merci de renouveler mon ordonnance : Ramipril 5 mg, 1 comprimé."
    )
    assert "Ramipril 5 mg — 1 comprimé (" in page.content.decode()


def test_non_renewable_prescription_cannot_be_renewed(client, login, patient, prescription):
    prescription.renewable = False
    prescription.save(update_fields=["renewable"])
    login(patient)
    client.post(reverse("records:request_renewal", args=[prescription.pk]))
    assert not Conversation.objects.exists()


def test_renewal_requests_appear_in_the_team_inbox(client, login, patient, clinician, prescription):
    services.request_renewal(user=patient.user, prescription=prescription)
    login(clinician)
    listed = client.get(reverse("messaging:team_inbox"), {"kind": "renewal"}).context["page"].object_list
    # The inbox's rows are the values it shows (named tuples): the conversation is the renewal's.
    assert [Conversation.objects.get(pk=row.pk).prescription for row in listed] == [prescription]


def test_results_show_flags_as_text(client, login, patient, report):
    login(patient)
    page = client.get(reverse("records:results")).content.decode()
    assert "Glucose" in page and "LOINC 2345-7" in page
    assert "Élevé" in page and "Bas" in page and "Normal" in page


def test_flag_computation(report):
    flags = {o.name: o.flag for o in report.observations.all()}
    assert flags == {"Glucose": "high", "Hémoglobine": "low", "TSH": "normal"}


def test_history_of_one_test_with_chart_and_table(client, login, patient, clinician, team, report):
    older = services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan", collected_on=TODAY - datetime.timedelta(days=90),
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("0.95"), "unit": "g/L", "low": Decimal("0.7"), "high": Decimal("1.1")}],
    )  # fmt: skip
    glucose = report.observations.get(loinc="2345-7")
    login(patient)
    response = client.get(reverse("records:observation_history", args=[glucose.pk]))
    page = response.content.decode()
    assert [row.pk for row in response.context["page"].object_list] == [
        glucose.pk,
        older.observations.get(loinc="2345-7").pk,
    ]
    assert "<svg" in page and "<polyline" in page and "<table" in page
    # SVG coordinates are never written with a French decimal comma.
    assert not re.search(r'(c[xy]|[xy][12]?|height|width)="-?[0-9]+,[0-9]', page)
    assert '<rect class="trend-band"' in page
    assert "0,95" in page and "1,32" in page


def test_the_trend_chart_marks_values_out_of_range_by_shape_and_explains_its_band(
    client, login, patient, clinician, team, report
):
    services.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan", collected_on=TODAY - datetime.timedelta(days=90),
        observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("0.95"), "unit": "g/L", "low": Decimal("0.7"), "high": Decimal("1.1")}],
    )  # fmt: skip
    glucose = report.observations.get(loinc="2345-7")  # 1,32: above the range
    login(patient)
    page = client.get(reverse("records:observation_history", args=[glucose.pk])).content.decode()
    # One in range (a circle), one above it (a triangle, in the danger colour).
    assert page.count('<circle class="trend-dot"') == 1
    assert page.count('<polygon class="trend-dot trend-dot-high"') == 1
    # Y ticks with their gridlines, and a legend for the band and the triangles.
    assert page.count('<line class="trend-grid"') >= 3
    assert re.findall(r'<text class="trend-label" text-anchor="end" dominant-baseline="middle"[^>]*>([^<]+)<', page)
    assert "Valeurs de référence (0,7 – 1,1)" in page and "Hors des valeurs de référence" in page
    # In the table, « Élevé » is flagged as on the results page.
    assert re.search(r'<tr class="flag-high">.*?<span class="flag">Élevé</span>', page, re.S)


def test_clinician_adds_a_lab_report_by_csv(client, login, clinician, patient):
    login(clinician)
    csv_file = SimpleUploadedFile("r.csv", "loinc;name;value;unit;low;high\n2093-3;Cholestérol;2,4;g/L;;2\n".encode())
    response = client.post(
        reverse("records:add_lab_report", args=[patient.pk]),
        {"title": "Lipides", "collected_on": "2026-11-01", "csv_file": csv_file, "obs-TOTAL_FORMS": "0", "obs-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 302
    observation = Observation.objects.get()
    assert (observation.name, observation.value, observation.flag) == ("Cholestérol", Decimal("2.4"), "high")


def test_a_bad_csv_names_its_bad_lines_and_saves_nothing(client, login, clinician, patient):
    login(clinician)
    csv_file = SimpleUploadedFile("r.csv", b"loinc,name,value,unit,low,high\n718-7,Hb,abc,g/dL,12,16\n,X,1,,,\n")
    response = client.post(
        reverse("records:add_lab_report", args=[patient.pk]),
        {"title": "Bilan", "collected_on": "2026-11-01", "csv_file": csv_file, "obs-TOTAL_FORMS": "0", "obs-INITIAL_FORMS": "0"},
    )  # fmt: skip
    page = response.content.decode()
    assert response.status_code == 200
    assert "Ligne 2, colonne value : Saisissez un nombre." in page
    assert "Ligne 3, colonne loinc : Ce champ est obligatoire." in page
    assert not LabReport.objects.exists()


def test_clinician_adds_a_lab_report_with_the_form(client, login, clinician, patient, team):
    login(clinician)
    data = {"title": "Bilan", "collected_on": "2026-11-01", "obs-TOTAL_FORMS": "2", "obs-INITIAL_FORMS": "0",
            "obs-0-loinc": "2160-0", "obs-0-name": "Créatinine", "obs-0-value": "9.5", "obs-0-unit": "mg/L",
            "obs-0-low": "6", "obs-0-high": "12"}  # fmt: skip
    assert client.post(reverse("records:add_lab_report", args=[patient.pk]), data).status_code == 302
    report = LabReport.objects.get()
    assert (report.team, report.observations.get().name) == (team, "Créatinine")


def test_clinician_adds_a_prescription(client, login, clinician, patient, team):
    login(clinician)
    bad = client.post(
        reverse("records:add_prescription", args=[patient.pk]),
        {"medication": "Doliprane", "dosage": "1 g", "frequency": "si douleur", "route": "oral",
         "start_date": "2026-11-10", "end_date": "2026-11-01"},
    )  # fmt: skip
    assert "La date de fin est antérieure" in bad.content.decode()
    good = client.post(
        reverse("records:add_prescription", args=[patient.pk]),
        {"medication": "Doliprane", "dosage": "1 g", "frequency": "si douleur", "route": "oral", "start_date": "2026-11-10"},
    )  # fmt: skip
    assert good.status_code == 302
    assert Prescription.objects.get().team == team


def test_patient_edits_their_own_profile_entries_only(client, login, patient, clinician, team):
    professional = Allergy.objects.create(patient=patient, author=clinician, team=team, substance="Pénicilline")
    login(patient)
    response = client.post(
        reverse("records:add_profile_entry", args=["allergy"]),
        {"allergy-substance": "Arachide", "allergy-reaction": "urticaire", "allergy-severity": "severe"},
    )
    assert response.status_code == 302
    mine = Allergy.objects.get(substance="Arachide")
    assert mine.by_patient and mine.author == patient.user
    client.post(reverse("records:delete_profile_entry", args=["allergy", professional.pk]))
    assert Allergy.objects.filter(pk=professional.pk).exists()
    confirm = client.get(reverse("records:delete_profile_entry", args=["allergy", mine.pk])).content.decode()
    assert "«\u00a0Arachide — urticaire — Sévère\u00a0» sera supprimé de votre dossier" in confirm
    assert Allergy.objects.filter(pk=mine.pk).exists()
    client.post(reverse("records:delete_profile_entry", args=["allergy", mine.pk]))
    assert not Allergy.objects.filter(pk=mine.pk).exists()


def test_profile_form_errors_are_shown_next_to_the_field(client, login, patient):
    login(patient)
    response = client.post(
        reverse("records:add_profile_entry", args=["measurement"]),
        {"measurement-kind": "blood_pressure", "measurement-value": "13", "measurement-measured_on": "2026-11-01"},
    )
    assert response.status_code == 200
    assert "Indiquez aussi la pression diastolique." in response.content.decode()
    assert not Measurement.objects.exists()
    assert client.post(reverse("records:add_profile_entry", args=["nonsense"])).status_code == 404


def test_measurements_trend(client, login, patient):
    for days, weight in [(400, "72.5"), (200, "71"), (10, "69.8")]:
        Measurement.objects.create(
            patient=patient, author=patient.user, kind="weight", value=Decimal(weight),
            measured_on=TODAY - datetime.timedelta(days=days),
        )  # fmt: skip
    login(patient)
    page = client.get(reverse("records:profile")).content.decode()
    assert "<polyline" in page and "69,8" in page


def test_a_measurements_values_are_written_with_their_own_decimals(client, login, patient):
    """62,2 and 63 on the profile and the history page (and the PDF, by the same filter):
    none added ("62,20")."""
    for days, weight in [(2, "62.20"), (1, "63.00")]:
        Measurement.objects.create(
            patient=patient, author=patient.user, kind="weight", value=Decimal(weight),
            measured_on=TODAY - datetime.timedelta(days=days),
        )  # fmt: skip
    login(patient)
    profile = client.get(reverse("records:profile")).content.decode()
    table = profile.split('<table class="table-stack">')[1].split("</table>")[0]
    assert '<td data-label="Valeur">62,2</td>' in table and '<td data-label="Valeur">63</td>' in table
    history = client.get(reverse("records:measurement_history", args=[Measurement.objects.first().pk]))
    assert ">62,2</td>" in history.content.decode() and "62,20" not in history.content.decode()


def test_every_measurement_is_in_the_table_and_its_source_reads_right(client, login, patient, clinician):
    for days in range(15):
        Measurement.objects.create(
            patient=patient, author=patient.user, kind="weight", value=Decimal(60 + days),
            measured_on=TODAY - datetime.timedelta(days=days),
        )  # fmt: skip
    login(patient)
    table = client.get(reverse("records:profile")).content.decode().split('<table class="table-stack">')[1]
    assert table.count('<tr><th scope="row">') == 15 and '<td data-label="Source">Vous</td>' in table
    login(clinician)
    table = client.get(reverse("careteams:patient_detail", args=[patient.pk])).content.decode()
    assert '<td data-label="Source">Le patient</td>' in table and ">Vous</td>" not in table


def test_the_profile_shows_the_latest_measurements_and_their_history_page_every_one(
    client, login, patient, clinician, team, other_patient, other_clinician, support
):
    """Past MEASUREMENTS_SHOWN values of a kind, the profile shows the latest and links to
    the kind's history page, which shows them all, newest first, a page at a time; to the
    patient and their care team, a 404 to anyone else; a care team's read is traced."""
    from records.views import HISTORY_PAGE_SIZE, MEASUREMENTS_SHOWN

    count = HISTORY_PAGE_SIZE + 5
    for days in range(count):
        Measurement.objects.create(
            patient=patient, author=patient.user, kind="weight", value=Decimal(60) + Decimal(days) / 100,
            measured_on=TODAY - datetime.timedelta(days=days),
        )  # fmt: skip
    Measurement.objects.create(patient=patient, author=patient.user, kind="height", value=170, measured_on=TODAY)
    latest = Measurement.objects.filter(kind="weight").order_by("-measured_on").first()
    url = reverse("records:measurement_history", args=[latest.pk])
    login(patient)
    profile = client.get(reverse("records:profile")).content.decode()
    weights = profile.split("<h3>Poids (kg)</h3>")[1].split("</table>")[0]
    assert weights.count('<tr><th scope="row">') == MEASUREMENTS_SHOWN and f'href="{url}"' in profile
    assert profile.count("Toutes les valeurs<") == 1  # the height has one value: no link
    # The care team's summary of the record shows the same latest values (by a prepared
    # query on PostgreSQL: portal.prepared).
    login(clinician)
    summary = client.get(reverse("careteams:patient_detail", args=[patient.pk])).content.decode()
    weights = summary.split("Poids (kg)</h")[1].split("</table>")[0]
    assert weights.count('<tr><th scope="row">') == MEASUREMENTS_SHOWN and f'href="{url}"' in summary
    if connection.vendor == "postgresql":
        from records.views import _latest_measurement_ids

        assert set(_latest_measurement_ids.prepared_shapes().values()) == {True}
    for reader in (patient, clinician):
        login(reader)
        seen, params = [], {}
        while True:
            response = client.get(url, params)
            assert response.status_code == 200 and "<polyline" in response.content.decode()
            seen += [row.pk for row in response.context["page"].object_list]
            if response.context["page"].older is None:
                break
            params = {"older": response.context["page"].older}
        weights = Measurement.objects.filter(kind="weight").order_by("-measured_on", "-pk")
        assert seen == list(weights.values_list("pk", flat=True))
    # The summary, then the history's two pages.
    assert AccessLog.objects.filter(actor=clinician, patient=patient, action="view_record").count() == 3
    for other in (other_patient, other_clinician, support):
        login(other)
        assert client.get(url).status_code == 404


def test_other_people_cannot_see_results_or_profile(client, login, other_patient, other_clinician, support, report):
    glucose = report.observations.first()
    for who in (other_patient, other_clinician, support):
        login(who)
        assert client.get(reverse("records:observation_history", args=[glucose.pk])).status_code == 404
    login(other_patient)
    assert client.post(reverse("records:delete_profile_entry", args=["allergy", 1])).status_code == 404


def test_clinician_reading_a_result_history_is_traced(client, login, clinician, report):
    login(clinician)
    client.get(reverse("records:observation_history", args=[report.observations.first().pk]))
    assert AccessLog.objects.get().action == "view_results"


def test_query_counts_do_not_grow(client, login, patient, clinician, team, prescription, report):
    def count(who, url):
        login(who)
        client.get(url)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx)

    urls = [
        (patient, reverse("records:prescriptions")),
        (patient, reverse("records:results")),
        (patient, reverse("records:profile")),
        (patient, reverse("records:observation_history", args=[report.observations.get(loinc="2345-7").pk])),
        (clinician, reverse("careteams:patient_detail", args=[patient.pk])),
        (clinician, reverse("careteams:patient_prescriptions", args=[patient.pk])),
        (clinician, reverse("careteams:patient_results", args=[patient.pk])),
        (patient, reverse("patient_home")),
    ]
    # One of each first: a prefetch (the comments on profile entries) costs its query
    # only once there is a row to prefetch for.
    Allergy.objects.create(patient=patient, author=patient.user, substance="Substance")
    Measurement.objects.create(patient=patient, author=patient.user, kind="weight", value=69, measured_on=TODAY)
    before = [count(who, url) for who, url in urls]
    for n in range(8):
        prescription.pk = None
        prescription.save()
        services.add_lab_report(
            author=clinician, team=team, patient=patient, title=f"Bilan {n}", collected_on=TODAY,
            observations=[{"loinc": "2345-7", "name": "Glucose", "value": Decimal("1"), "unit": "g/L"}],
        )  # fmt: skip
        Allergy.objects.create(patient=patient, author=patient.user, substance=f"Substance {n}")
        Measurement.objects.create(patient=patient, author=patient.user, kind="weight", value=70 + n, measured_on=TODAY)
    assert [count(who, url) for who, url in urls] == before


def test_a_reversed_reference_range_is_refused_next_to_the_upper_limit(client, login, clinician, patient):
    login(clinician)
    data = {"title": "Bilan", "collected_on": "2026-11-01", "obs-TOTAL_FORMS": "1", "obs-INITIAL_FORMS": "0",
            "obs-0-loinc": "2160-0", "obs-0-name": "Créatinine", "obs-0-value": "11", "obs-0-unit": "mg/L",
            "obs-0-low": "12", "obs-0-high": "6"}  # fmt: skip
    response = client.post(reverse("records:add_lab_report", args=[patient.pk]), data)
    assert response.status_code == 200
    assert response.context["formset"][0].errors == {
        "high": ["La limite supérieure est inférieure à la limite inférieure."]
    }
    # Said as every form says it: the title, and a summary linking to the row's field.
    page = response.content.decode()
    assert "<title>Erreur –" in page and 'role="alert"' in page
    assert (
        '<a href="#id_obs-0-high">Résultat 1, Limite supérieure : La limite supérieure est inférieure à la limite '
        "inférieure.</a>" in page
    )
    assert "<legend>Résultat 1</legend>" in page and "<legend>Résultat 2</legend>" not in page
    csv_file = SimpleUploadedFile("r.csv", b"loinc,name,value,unit,low,high\n2160-0,Creatinine,11,mg/L,12,6\n")
    response = client.post(
        reverse("records:add_lab_report", args=[patient.pk]),
        {"title": "Bilan", "collected_on": "2026-11-01", "csv_file": csv_file, "obs-TOTAL_FORMS": "0", "obs-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert (
        "Ligne 2, colonne high : La limite supérieure est inférieure à la limite inférieure."
        in response.content.decode()
    )
    assert not LabReport.objects.exists()


@time_machine.travel("2026-11-25 10:00 +01:00", tick=False)
def test_dates_of_things_that_happened_cannot_be_in_the_future(client, login, clinician, patient):
    login(clinician)
    response = client.post(
        reverse("records:add_lab_report", args=[patient.pk]),
        {"title": "Bilan", "collected_on": "2026-11-26", "obs-TOTAL_FORMS": "0", "obs-INITIAL_FORMS": "0"},
    )
    assert response.context["form"].errors == {"collected_on": ["Cette date est dans le futur."]}
    assert 'max="2026-11-25"' in response.content.decode()
    login(patient)
    response = client.post(
        reverse("records:add_profile_entry", args=["measurement"]),
        {"measurement-kind": "weight", "measurement-value": "64", "measurement-measured_on": "2031-01-01"},
    )
    assert "Cette date est dans le futur." in response.content.decode()
    today = client.post(
        reverse("records:add_profile_entry", args=["measurement"]),
        {"measurement-kind": "weight", "measurement-value": "64", "measurement-measured_on": "2026-11-25"},
    )
    assert today.status_code == 302
    assert Measurement.objects.get().measured_on.isoformat() == "2026-11-25"


# --- What cannot be: a value no person has, a date before the patient's birth, a wrong code --

MEASUREMENTS = [  # (kind, value, diastolic, the error expected or None)
    ("weight", "5000", "", "Indiquez une valeur entre 0,3 et 500."),
    ("weight", "0.1", "", "Indiquez une valeur entre 0,3 et 500."),
    ("weight", "71.5", "", None),
    ("height", "400", "", "Indiquez une valeur entre 20 et 260."),
    ("height", "172", "", None),
    ("glucose", "45", "", "Indiquez une valeur entre 0,1 et 10."),
    ("glucose", "0.95", "", None),
    ("blood_pressure", "80", "120", "La pression diastolique est inférieure à la systolique"),
    ("blood_pressure", "120", "120", "La pression diastolique est inférieure à la systolique"),
    ("blood_pressure", "120", "900", "Indiquez une valeur entre 20 et 200."),
    ("blood_pressure", "128", "82", None),
]


@pytest.mark.parametrize(("kind", "value", "diastolic", "error"), MEASUREMENTS)
def test_a_measurement_no_person_has_is_refused_next_to_its_field(
    client, login, patient, kind, value, diastolic, error
):
    login(patient)
    response = client.post(
        reverse("records:add_profile_entry", args=["measurement"]),
        {"measurement-kind": kind, "measurement-value": value, "measurement-value2": diastolic,
         "measurement-measured_on": "2026-11-01"},
    )  # fmt: skip
    if error is None:
        assert response.status_code == 302 and Measurement.objects.count() == 1
    else:
        assert response.status_code == 200 and error in response.content.decode()
        assert not Measurement.objects.exists()


BEFORE_BIRTH = "Cette date est antérieure à la naissance du patient (15/06/1985)."


@pytest.mark.parametrize(
    ("who", "route", "data"),
    [
        ("patient", "records:add_profile_entry", {"args": ["measurement"], "measurement-kind": "weight",
                                                  "measurement-value": "60", "measurement-measured_on": "1900-01-01"}),
        ("patient", "records:add_profile_entry", {"args": ["vaccination"], "vaccination-vaccine": "BCG",
                                                  "vaccination-date": "1984-01-01"}),
        ("clinician", "records:add_lab_report", {"title": "Bilan", "collected_on": "1850-11-20",
                                                 "obs-TOTAL_FORMS": "0", "obs-INITIAL_FORMS": "0"}),
        ("clinician", "records:add_prescription", {"medication": "Amoxicilline", "dosage": "1 g", "frequency": "2/j",
                                                   "route": "oral", "start_date": "1850-01-01"}),
        ("clinician", "records:clinician_add_profile_entry", {"args": ["condition"], "name": "Asthme",
                                                              "since": "1980-05-01"}),
    ],
)  # fmt: skip
def test_a_date_before_the_patients_birth_is_refused(client, login, patient, clinician, who, route, data):
    """Camille was born on 15/06/1985: nothing of her record happened before."""
    login(patient if who == "patient" else clinician)
    args = data.pop("args", [])
    url = reverse(route, args=[patient.pk, *args] if who == "clinician" else args)
    response = client.post(url, data)
    assert response.status_code == 200
    assert BEFORE_BIRTH in response.content.decode()
    assert 'min="1985-06-15"' in response.content.decode()


def test_a_typed_loinc_code_is_checked_as_the_api_checks_it(client, login, clinician, patient):
    login(clinician)
    data = {"title": "Bilan", "collected_on": "2026-11-01", "obs-TOTAL_FORMS": "1", "obs-INITIAL_FORMS": "0",
            "obs-0-loinc": "ZZZ-not-loinc", "obs-0-name": "Glucose", "obs-0-value": "1", "obs-0-unit": "g/L"}  # fmt: skip
    response = client.post(reverse("records:add_lab_report", args=[patient.pk]), data)
    assert response.context["formset"][0].errors == {
        "loinc": ["ZZZ-not-loinc n’est pas un code LOINC valide (format ou chiffre de contrôle)."]
    }
    data["obs-0-loinc"] = "2345-7"
    assert client.post(reverse("records:add_lab_report", args=[patient.pk]), data).status_code == 302
    assert LabReport.objects.get().observations.get().loinc == "2345-7"


def test_an_allergys_severity_is_never_chosen_for_the_person(client, login, patient):
    """Left alone, the severity is « Non connue »: nothing preselected, nothing guessed."""
    login(patient)
    page = client.get(reverse("records:profile")).content.decode()
    select = page.split('name="allergy-severity"', 1)[1].split("</select>", 1)[0]
    assert '<option value="" selected>Non connue</option>' in select and select.count("selected") == 1
    client.post(reverse("records:add_profile_entry", args=["allergy"]), {"allergy-substance": "Latex"})
    allergy = Allergy.objects.get(substance="Latex")
    assert allergy.severity == "" and allergy.describe() == "Latex"
