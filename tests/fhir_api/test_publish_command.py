"""manage.py fhir_publish against the live server: a PDF and a lab CSV."""

import pytest
from django.core.management import CommandError, call_command

from records.models import Document, LabReport
from tests.fhir_api.conftest import NIR, PDF

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def publish(live_server, registered, monkeypatch):
    client, secret = registered
    monkeypatch.setenv("FHIR_CLIENT_SECRET", secret)
    common = ["--url", f"{live_server.url}/fhir", "--client-id", client.client_id, "--ins", NIR]
    common += ["--family", "Durand", "--birth-date", "1985-06-15"]

    def run(*args):
        call_command("fhir_publish", *common, *args)

    return run


def test_publishes_a_pdf(publish, ins_patient, tmp_path):
    path = tmp_path / "cr.pdf"
    path.write_bytes(PDF)
    publish("pdf", str(path), "--title", "Compte rendu", "--date", "2026-11-20", "--category", "report")

    assert Document.objects.get().title == "Compte rendu"


def test_publishes_a_lab_csv(publish, ins_patient, tmp_path):
    path = tmp_path / "labs.csv"
    path.write_text("loinc;name;value;unit;low;high\n718-7;Hémoglobine;13,2;g/dL;12;16\n2345-7;Glucose;5.4;mmol/L;;\n")
    publish("labs", str(path), "--report-id", "LAB-9", "--date", "2026-11-25")

    assert sorted(LabReport.objects.get().observations.values_list("loinc", flat=True)) == ["2345-7", "718-7"]


def test_a_refusal_fails_the_command(publish, patient, tmp_path):
    path = tmp_path / "cr.pdf"
    path.write_bytes(PDF)
    with pytest.raises(CommandError, match="403"):
        publish("pdf", str(path), "--title", "Compte rendu", "--date", "2026-11-20")
