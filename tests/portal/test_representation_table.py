"""Representation as a generated table, checked against a plain statement of the rule.

Two records: a minor (represented by parents) and an adult (by a legal representative
and trusted helpers). On each, for every part (documents, results, prescriptions,
messages, the medical profile) one item open to representatives and one a care team
made confidential. One representative login for every combination of kind (parent,
legal, helper) × scope (the 16 subsets of the four parts) × expiry (open-ended, dated,
ended by someone), read with the clock at the start and moved past the end date.

For every login and both clocks, the policy's answer for every item is compared with
``may_see`` below, which says the rule in the words of the issue and shares no code with
the policy; so are the records in the switcher, the export's content and who is told
(content-free) of news and of messages.
"""

import datetime
import itertools

import pytest
import time_machine
from django.utils import timezone

from messaging import services as messaging
from messaging.models import Conversation, Message
from portal import access
from portal.accounts.models import Patient, Representation, User
from records import export_builders, exports
from records.models import Allergy, Document, Export, LabReport, News, Observation, Prescription
from tests.factories import CareTeamFactory, ClinicianFactory

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
T0 = datetime.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
END = T0 + datetime.timedelta(days=30)
CLOCKS = {"now": T0, "past the end date": T0 + datetime.timedelta(days=40)}
PARTS = ("documents", "results", "prescriptions", "messages")
KINDS = ("parent", "legal", "helper")
SCOPES = [frozenset(c) for size in range(len(PARTS) + 1) for c in itertools.combinations(PARTS, size)]
EXPIRIES = ("open", "dated", "ended")


def may_see(*, kind, scope, expiry, clock, part, confidential):
    """The rule, stated once and plainly. A representation acts only while in force: not
    ended, not past its end date. What a care team made confidential never reaches a
    representative. Parents and legal representatives act for the whole record; a
    trusted helper only for the parts the patient gave; the medical profile, the care
    teams and exports are for parents and legal representatives only."""
    if expiry == "ended" or (expiry == "dated" and clock >= END):
        return False
    if confidential:
        return False
    full = kind in ("parent", "legal")
    if part in ("profile", "manage"):
        return full
    return full or part in scope


def test_the_rule_itself_says_what_the_issue_says():
    """The oracle checked on the issue's own cases, so a wrong oracle cannot pass the table."""
    helper = {"kind": "helper", "scope": frozenset({"documents"}), "expiry": "dated", "clock": T0}
    assert may_see(**helper, part="documents", confidential=False)
    assert not may_see(
        **helper, part="results", confidential=False
    )  # "a helper with scope 'documents' gets 404 on results"
    assert not may_see(**{**helper, "clock": CLOCKS["past the end date"]}, part="documents", confidential=False)
    parent = {"kind": "parent", "scope": frozenset(), "expiry": "open", "clock": T0}
    assert may_see(**parent, part="results", confidential=False)
    assert not may_see(**parent, part="results", confidential=True)  # the minor's secret
    assert not may_see(**{**parent, "expiry": "ended"}, part="results", confidential=False)


@pytest.fixture
def universe(db):
    with time_machine.travel(T0 - datetime.timedelta(days=1), tick=False):
        return _build_universe()


def _build_universe():
    team = CareTeamFactory(name="Maison de santé")
    clinician = ClinicianFactory(teams=[team])
    minor = Patient.objects.create(first_name="Léa", last_name="Durand", birth_date=datetime.date(2014, 5, 1))
    adult = Patient.objects.create(first_name="Paul", last_name="Martin", birth_date=datetime.date(1950, 5, 1))
    nobody = Patient.objects.create(first_name="Zoé", last_name="Petit", birth_date=datetime.date(1990, 5, 1))
    items = []  # (model name, pk, patient pk, part, confidential)
    for patient in (minor, adult, nobody):
        for confidential in (False, True):
            tag = f"{patient.first_name}-{'secret' if confidential else 'open'}"
            document = Document.objects.create(
                patient=patient, title=f"Doc {tag}", category="report", care_date=datetime.date(2026, 1, 1),
                author=clinician, author_team=team, confidential=confidential, content_type="application/pdf",
                size=1, sha256="0" * 64, key_id="k", file_name=f"f-{tag}", status="ready",
            )  # fmt: skip
            report = LabReport.objects.create(
                patient=patient, title=f"Bilan {tag}", collected_on=datetime.date(2026, 1, 1), author=clinician,
                team=team, confidential=confidential,
            )  # fmt: skip
            observation = Observation.objects.create(
                report=report, patient=patient, loinc=f"{1000 + confidential}-{patient.pk}", name=f"Test {tag}",
                value=1, unit="g/L",
            )  # fmt: skip
            prescription = Prescription.objects.create(
                patient=patient, medication=f"Med {tag}", dosage="1", frequency="1/j",
                start_date=datetime.date(2026, 1, 1), prescriber=clinician, team=team, confidential=confidential,
            )  # fmt: skip
            conversation = Conversation.objects.create(
                patient=patient, team=team, subject=f"Sujet {tag}", started_by=clinician, confidential=confidential
            )
            for model, row, part in (
                ("Document", document, "documents"),
                ("LabReport", report, "results"),
                ("Observation", observation, "results"),
                ("Prescription", prescription, "prescriptions"),
                ("Conversation", conversation, "messages"),
            ):
                items.append((model, row.pk, patient.pk, part, confidential))
            for field, row in (("document", document), ("lab_report", report), ("prescription", prescription)):
                News.objects.create(patient=patient, kind="document", **{field: row})
        for confidential in (False, True):
            allergy = Allergy.objects.create(
                patient=patient, author=clinician, team=team, confidential=confidential,
                substance=f"Pollen {patient.pk}{'-secret' if confidential else ''}",
            )  # fmt: skip
            items.append(("Allergy", allergy.pk, patient.pk, "profile", confidential))
    people = []
    for number, (kind, scope, expiry) in enumerate(itertools.product(KINDS, SCOPES, EXPIRIES)):
        user = User.objects.create_user(f"rep{number}@example.org", None, first_name="R", last_name=str(number))
        patient = minor if kind == "parent" else adult
        Representation.objects.create(
            patient=patient, representative=user, kind=kind, starts_at=T0 - datetime.timedelta(days=1),
            ends_at=END if expiry == "dated" else None,
            ended_at=T0 - datetime.timedelta(hours=1) if expiry == "ended" else None,
            **{part: part in scope for part in PARTS},
        )  # fmt: skip
        people.append((user, kind, scope, expiry, patient))
    return {"team": team, "clinician": clinician, "items": items, "people": people, "patients": (minor, adult, nobody)}


MODELS = {"Document": Document, "LabReport": LabReport, "Observation": Observation, "Prescription": Prescription}


def _visible(user, model_name):
    if model_name == "Document":
        rows = access.documents_visible_to(user)
    elif model_name == "Conversation":
        rows = access.conversations_for(user)
    elif model_name == "Allergy":
        rows = access.items_visible_to(user, Allergy)
    else:
        rows = access.items_visible_to(user, MODELS[model_name])
    return set(rows.values_list("pk", flat=True))


@pytest.mark.parametrize("clock", CLOCKS)
def test_policy_matches_the_rule_for_every_combination(universe, clock):
    now = CLOCKS[clock]
    items = universe["items"]
    checked = 0
    with time_machine.travel(now, tick=False):
        for user, kind, scope, expiry, patient in universe["people"]:
            rule = {"kind": kind, "scope": scope, "expiry": expiry, "clock": now}
            for model_name in ("Document", "LabReport", "Observation", "Prescription", "Conversation", "Allergy"):
                expected = {
                    pk
                    for name, pk, patient_pk, part, confidential in items
                    if name == model_name and patient_pk == patient.pk and may_see(**rule, part=part, confidential=confidential)
                }  # fmt: skip
                assert _visible(user, model_name) == expected, (kind, sorted(scope), expiry, clock, model_name)
                checked += 1
            # The switcher: the one record, with exactly the parts the rule gives.
            records = access.records_of(user)
            parts = {part for part in (*PARTS, "profile", "manage") if may_see(**rule, part=part, confidential=False)}
            if not parts:
                assert records == [], (kind, sorted(scope), expiry, clock)
            else:
                assert [(r.patient, set(r.parts)) for r in records] == [(patient, parts)], (kind, scope, expiry)
            # Exports: only the whole-record representatives, while in force.
            may_export = may_see(**rule, part="manage", confidential=False)
            assert access.patients_acted_for(user, access.MANAGE).filter(pk=patient.pk).exists() == may_export
            # The content-free digest may mention only news of items the rule shows.
            news = set(access.news_for_representative(user).values_list("pk", flat=True))
            expected_news = set(
                News.objects.filter(patient=patient).filter(
                    pk__in=[
                        n.pk
                        for n in News.objects.filter(patient=patient).select_related("document", "lab_report", "prescription")
                        if may_see(**rule, part=_news_part(n), confidential=_news_item(n).confidential)
                    ]
                ).values_list("pk", flat=True)
            )  # fmt: skip
            assert news == expected_news, (kind, sorted(scope), expiry, clock)
            checked += 1
    assert checked == len(KINDS) * len(SCOPES) * len(EXPIRIES) * 7


def _news_item(news):
    return news.document or news.lab_report or news.prescription


def _news_part(news):
    return "documents" if news.document_id else "results" if news.lab_report_id else "prescriptions"


@pytest.mark.parametrize("clock", CLOCKS)
def test_who_is_told_matches_the_rule(universe, clock):
    """Publication digests and new-message emails go to the representatives the rule
    lets see the item, never for a confidential one."""
    now = CLOCKS[clock]
    minor, adult, nobody = universe["patients"]
    with time_machine.travel(now, tick=False):
        for patient, part, confidential in itertools.product((minor, adult), PARTS, (False, True)):
            expected = {
                user.pk
                for user, kind, scope, expiry, represented in universe["people"]
                if represented == patient
                and may_see(kind=kind, scope=scope, expiry=expiry, clock=now, part=part, confidential=confidential)
            }
            told = set(
                access.representatives_told(patient, part, confidential=confidential).values_list("pk", flat=True)
            )
            assert told == expected, (patient, part, confidential, clock)
        assert not access.representatives_told(nobody, "documents").exists()
        # A care team's message: the same people are emailed, through the real outbox.
        clinician = universe["clinician"]
        for conversation in Conversation.objects.filter(patient__in=[minor, adult]):
            message = Message(conversation=conversation, author=clinician, author_team=conversation.team, body="x")
            expected = {
                user.pk
                for user, kind, scope, expiry, represented in universe["people"]
                if represented == conversation.patient
                and may_see(
                    kind=kind,
                    scope=scope,
                    expiry=expiry,
                    clock=now,
                    part="messages",
                    confidential=conversation.confidential,
                )
            }
            assert {user.pk for user in messaging.recipients_of(message)} == expected


@pytest.mark.parametrize("kind", ["parent", "legal"])
@pytest.mark.parametrize("expiry", EXPIRIES)
@pytest.mark.parametrize("clock", CLOCKS)
def test_exports_carry_what_the_rule_shows_and_never_a_secret(universe, kind, expiry, clock):
    """The export a representative asks for: built with their rights at build time; it
    never carries a confidential item; refused once the representation is over."""
    now = CLOCKS[clock]
    user, _kind, _scope, _expiry, patient = next(
        p for p in universe["people"] if p[1] == kind and p[3] == expiry and p[2] == frozenset()
    )
    allowed = may_see(kind=kind, scope=frozenset(), expiry=expiry, clock=now, part="manage", confidential=False)
    with time_machine.travel(now, tick=False):
        export = Export(patient=patient, requested_by=user, kind=Export.Kind.SUMMARY, options={"sections": []})
        if not allowed:
            with pytest.raises(export_builders.Gone):
                exports._build(export, lambda percent: None)
            return
        html = export_builders.summary_html(user=user, patient=patient, sections=list(export_builders.SECTIONS))
    name = patient.first_name
    for shown in (f"Doc {name}-open", f"Med {name}-open", f"Test {name}-open", f"Pollen {patient.pk}"):
        assert shown in html, shown
    for secret in (f"Doc {name}-secret", f"Med {name}-secret", f"Test {name}-secret", f"Pollen {patient.pk}-secret"):
        assert secret not in html, secret


def test_a_helper_can_never_export(universe):
    for user, kind, _scope, _expiry, patient in universe["people"]:
        if kind == "helper":
            export = Export(patient=patient, requested_by=user, kind=Export.Kind.ARCHIVE)
            with time_machine.travel(T0, tick=False), pytest.raises(export_builders.Gone):
                exports._build(export, lambda percent: None)
            assert not access.exports_for(user).exists()


def test_the_oracle_covers_each_combination_once(universe):
    assert len(universe["people"]) == 3 * 16 * 3
    assert timezone.is_aware(T0)


ALL_MODELS = {**MODELS, "Conversation": Conversation, "Allergy": Allergy}


@pytest.mark.parametrize("clock", CLOCKS)
def test_rows_in_the_record_one_is_in_are_the_policys_rows(universe, clock):
    """``access.rows_in_record`` (the record one is in, one simple query) answers what the
    user-wide policy answers narrowed to that record, for every login of the table, and
    404s outside the parts a representative acts on; the holder sees all of their own."""
    from django.http import Http404

    now = CLOCKS[clock]
    _minor, adult, _nobody = universe["patients"]
    adult.user = User.objects.create_user("paul@example.org", None, first_name="Paul", last_name="Martin")
    adult.save()
    holder = (adult.user, "self", frozenset(PARTS), "open", adult)
    checked = 0
    with time_machine.travel(now, tick=False):
        for user, kind, scope, expiry, _patient in [*universe["people"], holder]:
            for record in access.records_of(user):
                for name, model in ALL_MODELS.items():
                    part, _confidential = access.MODEL_PART[name]
                    if not record.may(part):
                        with pytest.raises(Http404):
                            access.rows_in_record(record, model)
                        continue
                    expected = _visible(user, name) & set(
                        model.objects.filter(patient=record.patient).values_list("pk", flat=True)
                    )
                    assert set(access.rows_in_record(record, model).values_list("pk", flat=True)) == expected, (
                        kind, sorted(scope), expiry, clock, name,
                    )  # fmt: skip
                    checked += 1
    # The exports one may see in a record: those one asked for, when one manages it.
    from records.models import Export

    people = [person for person, *_rest in [*universe["people"], holder]]
    Export.objects.bulk_create(
        Export(patient=patient, requested_by=person, kind=Export.Kind.SUMMARY, fingerprint=f"{person.pk}")
        for patient in universe["patients"] for person in people
    )  # fmt: skip
    with time_machine.travel(now, tick=False):
        for user in people:
            for record in access.records_of(user):
                expected = set(access.exports_for(user).filter(patient=record.patient).values_list("pk", flat=True))
                found = set(access.exports_in_record(user, record).values_list("pk", flat=True))
                assert found == expected, (record.kind, clock)
                checked += 1
    own_rows = set(access.rows_in_record(access.records_of(adult.user)[0], Document).values_list("pk", flat=True))
    assert own_rows == set(Document.objects.filter(patient=adult).values_list("pk", flat=True))
    assert len(own_rows) == 2  # the confidential one included: it is the holder's own
    assert checked > 100
