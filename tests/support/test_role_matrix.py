"""Support staff × every URL of the product, with the real ids of a full record: the
medical URLs answer 404, no answer carries medical content, nothing changes, and no
read is written to the patient's access history."""

import datetime
import itertools
import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from messaging import services as messaging
from messaging.models import Attachment, Conversation, Message, ReplyTemplate
from portal.audit.models import AccessLog
from records import services as records
from records.models import Allergy, Condition, Document, Export, Measurement, Prescription, Vaccination
from records.views import PROFILE_MODELS
from tests.accounts.test_second_factor import _sample

pytestmark = pytest.mark.django_db

# What only a patient or their care team may reach.
MEDICAL_NAMESPACES = {"records", "messaging", "exports", "careteams"}
MEDICAL_NAMES = {"patient_home"}
# Words that appear only in the patient's medical content below.
MARKERS = ["Zyrtecoxine", "Arachide-marqueur", "Goutte-marqueur", "Vaxi-marqueur", "genou-marqueur",
           "Compte rendu marqueur", "Hémoglobine-marqueur", "Modèle-marqueur"]  # fmt: skip

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def record(settings, tmp_path, patient, clinician, team, django_capture_on_commit_callbacks):
    """One of everything in the patient's record; returns the ids, per kind."""
    settings.MEDIA_ROOT = tmp_path / "media"
    day = datetime.date(2026, 10, 1)
    with django_capture_on_commit_callbacks(execute=True):
        document = records.upload_document(
            author=clinician, patient=patient, upload=SimpleUploadedFile("cr.png", PNG),
            title="Compte rendu marqueur", category="report", care_date=day, team=team,
        )  # fmt: skip
        conversation = messaging.start_conversation(
            author=patient.user, patient=patient, team=team, subject="genou-marqueur", kind="question",
            body="genou-marqueur", attachments=[SimpleUploadedFile("photo.png", PNG)],
        )  # fmt: skip
    prescription = Prescription.objects.create(
        patient=patient, medication="Zyrtecoxine", dosage="1", frequency="1/j", start_date=day,
        renewable=True, prescriber=clinician, team=team,
    )  # fmt: skip
    report = records.add_lab_report(
        author=clinician, team=team, patient=patient, title="Bilan", collected_on=day,
        observations=[{"loinc": "718-7", "name": "Hémoglobine-marqueur", "unit": "g/dL",
                       "low": Decimal(12), "high": Decimal(16), "value": Decimal("13.5")}],
    )  # fmt: skip
    entry = {"author": clinician, "team": team, "patient": patient}
    profile = {
        "allergy": Allergy.objects.create(substance="Arachide-marqueur", **entry),
        "condition": Condition.objects.create(name="Goutte-marqueur", **entry),
        "vaccination": Vaccination.objects.create(vaccine="Vaxi-marqueur", date=day, **entry),
        "measurement": Measurement.objects.create(kind="weight", value=70, measured_on=day, **entry),
    }
    export = Export.objects.create(
        patient=patient, requested_by=patient.user, kind="summary", options={}, fingerprint="x", state="ready"
    )
    template = ReplyTemplate.objects.create(team=team, title="Modèle-marqueur", body="Modèle-marqueur")
    return {
        "document": document.pk,
        "conversation": conversation.pk,
        "attachment": Attachment.objects.get().pk,
        "prescription": prescription.pk,
        "observation": report.observations.get().pk,
        "profile": {kind: item.pk for kind, item in profile.items()},
        "export": export.pk,
        "template": template.pk,
        "patient": patient.pk,
        "link": patient.care_links.get().pk,
        "user": clinician.pk,
    }


# The ids each URL parameter is tried with, by view name then parameter name.
def candidates(record, view_name, kwarg):
    by_view = {
        "records:document": "document", "records:download": "document", "records:preview": "document",
        "records:set_hidden": "document", "records:delete": "document",
        "records:request_renewal": "prescription", "records:observation_history": "observation",
        "exports:download": "export",
        "messaging:conversation": "conversation", "messaging:thread": "conversation",
        "messaging:assign": "conversation", "messaging:status": "conversation",
        "messaging:attachment": "attachment", "messaging:save_attachment": "attachment",
        "messaging:delete_reply_template": "template",
    }  # fmt: skip
    by_kwarg = {"patient_pk": "patient", "link_pk": "link", "user_pk": "user"}
    if view_name == "records:delete_profile_entry":
        return list(record["profile"].values())
    if view_name == "records:measurement_history":
        return [record["profile"]["measurement"]]
    key = by_view.get(view_name) or by_kwarg.get(kwarg)
    if key is None:  # not a medical URL (support console, account pages): every id we have
        return sorted({v for v in record.values() if isinstance(v, int)})
    return [record[key]]


def url_patterns(patterns=None, prefix="/", namespace=None):
    """(view name, URL with each <int:x> left as {x} and other parameters sampled)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = str(pattern.pattern)
        ints = re.sub(r"<int:(\w+)>", r"{\1}", route) if "<int:" in route else None
        part = _sample(pattern) if ints is None else re.sub(r"<(?:\w+:)?\w+>", "x", ints)
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, prefix + part, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern):
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), prefix + part


def urls_to_try(record):
    for view_name, template in url_patterns():
        names = re.findall(r"{(\w+)}", template)
        strings = list(PROFILE_MODELS) if view_name.startswith("records:") and "/x/" in template else ["x"]
        for text in strings:
            base = template.replace("/x/", f"/{text}/") if text != "x" else template
            if not names:
                yield view_name, base
                continue
            for pks in itertools.product(*(candidates(record, view_name, name) for name in names)):
                yield view_name, base.format(**dict(zip(names, pks, strict=True)))


def snapshot():
    return (
        list(Document.objects.values_list("pk", "hidden")),
        list(Conversation.objects.values_list("pk", "status", "assigned_to")),
        Message.objects.count(),
        Prescription.objects.count(),
        Export.objects.count(),
        ReplyTemplate.objects.count(),
        [model.objects.count() for model in PROFILE_MODELS.values()],
        AccessLog.objects.exclude(action=AccessLog.Action.SUPPORT_VIEW).count(),
    )


def test_support_reaches_no_medical_url_and_sees_no_medical_content(login, client, support, record, patient):
    login(support)
    before = snapshot()
    medical, other = [], []
    for view_name, url in urls_to_try(record):
        namespace = view_name.split(":")[0] if ":" in view_name else None
        is_medical = namespace in MEDICAL_NAMESPACES or view_name in MEDICAL_NAMES
        answers = [client.get(url)]
        if is_medical:
            answers.append(client.post(url, {"status": "closed", "hidden": "1", "assignee": support.pk}))
        for response in answers:
            body = response.content.decode(errors="replace")
            assert response.status_code < 500, (url, response.status_code)
            for marker in MARKERS:
                assert marker not in body, (url, marker)
        if is_medical:
            statuses = {response.status_code for response in answers}
            assert statuses <= {404, 405} and 404 in statuses, (url, statuses)
            medical.append(url)
        else:
            other.append(url)

    # The walk really walked, with the record's own ids, and support was signed in throughout.
    assert len(medical) >= 25 and len(other) >= 30
    for kind in ("document", "conversation", "export", "prescription"):
        assert any(url.endswith(f"/{record[kind]}/") or f"/{record[kind]}/" in url for url in medical), kind
    assert client.get(reverse("support:home")).status_code == 200
    assert snapshot() == before
    # Support read nothing medical: only identities and accounts, each read in the person's history.
    assert set(AccessLog.objects.filter(actor=support).values_list("action", flat=True)) == {"support_view"}


def test_the_same_walk_lets_the_patient_in(login, patient, record):
    """The walk's ids are the right ones: the patient reaches their own pages with them."""
    client = login(patient, on=Client())
    for name, pk in [("records:document", record["document"]), ("messaging:conversation", record["conversation"]),
                     ("records:observation_history", record["observation"]), ("exports:page", None),
                     ("records:measurement_history", record["profile"]["measurement"])]:  # fmt: skip
        assert client.get(reverse(name, args=[pk] if pk else [])).status_code == 200, name
