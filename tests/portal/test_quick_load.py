"""Rows read into instances without ``__init__`` (portal.models.QuickLoad): the instances,
their state and their deferred fields are Django's own, whole or partly read, with
related rows, and Django's way is taken whenever ``pre_init`` or ``post_init`` is heard."""

import datetime

import pytest
from django.apps import apps
from django.db.models.signals import post_init, pre_init

from messaging.models import Conversation, Message
from portal.careteams.models import CareTeam
from portal.models import QuickLoad
from records.models import Document, LabReport, Observation, Prescription
from tests.factories import CareLinkFactory, ClinicianFactory

pytestmark = pytest.mark.django_db


def state(instances):
    """What an instance holds: its class, its values (related rows cached included), its
    state, its deferred fields."""
    return [
        (
            type(instance),
            {name: value for name, value in instance.__dict__.items() if name != "_state"},
            instance._state.adding,
            instance._state.db,
            instance._state.fetch_mode,
            dict(instance._state.fields_cache),
            instance.get_deferred_fields(),
        )
        for instance in instances
    ]


@pytest.fixture
def rows(db):
    link = CareLinkFactory(patient__first_name="Léa", patient__last_name="O'Hara")
    patient, team = link.patient, link.team
    clinician = ClinicianFactory(teams=[team])
    Document.objects.create(
        patient=patient, title="Compte rendu", category="report", care_date=datetime.date(2026, 1, 2),
        author=clinician, author_team=team, content_type="application/pdf", size=10, sha256="0" * 64, key_id="dev",
        file_name="documents/x.bin", status="ready",
    )  # fmt: skip
    report = LabReport.objects.create(patient=patient, title="Bilan", collected_on=datetime.date(2026, 1, 3),
                                      author=clinician, team=team)  # fmt: skip
    Observation.objects.create(report=report, patient=patient, loinc="2345-7", name="Glucose", value=1, unit="g/L",
                               low=0.7, high=1.1)  # fmt: skip
    Prescription.objects.create(patient=patient, medication="Ramipril", dosage="1", frequency="1/j",
                                start_date=datetime.date(2026, 1, 1), prescriber=clinician, team=team)  # fmt: skip
    conversation = Conversation.objects.create(patient=patient, team=team, subject="Question", started_by=clinician)
    Message.objects.create(conversation=conversation, author=clinician, body="Bonjour")
    return patient


def listening(signal):
    def receiver(**kwargs):
        heard.append(kwargs.get("instance"))

    heard = []
    signal.connect(receiver, weak=False)
    return heard, lambda: signal.disconnect(receiver)


def test_every_quick_model_is_loaded_as_django_loads_it(rows):
    quick_models = [model for model in apps.get_models() if issubclass(model, QuickLoad)]
    assert {Document, LabReport, Observation, Prescription, Conversation, Message, CareTeam} <= set(quick_models)
    querysets = [
        *(model.objects.order_by("pk") for model in quick_models),
        Document.objects.select_related("author_team", "patient").order_by("pk"),
        Observation.objects.select_related("report__team")
        .only("value", "report__title", "report__team__name")
        .order_by("pk"),
        Document.objects.defer("title", "sha256").order_by("pk"),
        Message.objects.select_related("conversation").order_by("pk"),
    ]
    for queryset in querysets:
        quick = list(queryset.all())
        assert quick, queryset.model
        for signal in (pre_init, post_init):  # heard: Django's own __init__
            heard, stop = listening(signal)
            try:
                by_django = list(queryset.all())
            finally:
                stop()
            assert heard, (queryset.model, signal)
            assert state(quick) == state(by_django), queryset.model
    document = Document.objects.select_related("author_team").get()
    assert document._state.fields_cache["author_team"].name == CareTeam.objects.get().name
    assert Document.objects.get().author_team == CareTeam.objects.get()  # read when asked


def test_a_deferred_field_is_read_when_asked_and_an_instance_saves_as_an_update(rows):
    document = Document.objects.defer("title").get()
    assert document.get_deferred_fields() == {"title"}
    assert document.title == "Compte rendu"  # read then
    document.title = "Compte rendu corrigé"
    document.save(update_fields=["title"])
    assert Document.objects.get().title == "Compte rendu corrigé"
    team = CareTeam.objects.get()
    team.name = "Cabinet <neuf>"
    team.save()  # an update (the state says it came from the database), not an insert
    assert CareTeam.objects.count() == 1 and CareTeam.objects.get().name == "Cabinet <neuf>"
