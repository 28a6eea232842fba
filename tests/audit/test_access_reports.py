""" "I don't recognise this": a patient reports one line of their access history; it
reaches support as a case (who, as what, which team, when, which kind of access:
never what was read), the data-protection contact gets a content-free copy, support
answers with a note kept in the support trail, and the patient reads the answer."""

import re
import uuid

import pytest
from django.core import mail
from django.urls import reverse

from portal import access
from portal.audit.models import AccessLog, AccessReport
from portal.support.models import SupportAction

TARGET = "Compte rendu de consultation de cardiologie"
COMMENT = "Je ne connais pas cette personne"


@pytest.fixture(autouse=True)
def dpo(settings):
    settings.DPO_EMAIL = "dpo@carnet.example"


@pytest.fixture
def read(patient, clinician):
    """A clinician of the patient's team opened one of their documents."""
    return access.trace_read(clinician, patient, AccessLog.Action.VIEW_DOCUMENT, TARGET)


def report(client, read, comment=COMMENT):
    return client.post(reverse("records:report_access", args=[read.pk]), {"comment": comment})


@pytest.mark.django_db
def test_the_whole_path_from_the_patient_to_support_and_back(
    client, login, patient, clinician, team, support, read, django_capture_on_commit_callbacks
):
    login(patient)
    page = client.get(reverse("records:access_history")).content.decode()
    assert "I don’t recognise this" in page or "Je ne reconnais pas cet accès" in page
    assert "Do not write any health information here" in page or "aucune information de santé" in page

    with django_capture_on_commit_callbacks(execute=True):
        assert report(client, read).status_code == 302
    case = AccessReport.objects.get()
    assert (case.access_log, case.patient, case.comment, case.status) == (read, patient, COMMENT, "open")
    # The data-protection contact's copy: the case number, nothing else.
    [copy] = mail.outbox
    assert copy.to == ["dpo@carnet.example"]
    assert re.search(rf"\b{case.pk}\b", copy.body)
    for secret in (TARGET, COMMENT, patient.full_name, clinician.get_full_name(), team.name):
        assert secret not in copy.subject + copy.body

    login(support)
    listing = client.get(reverse("support:reports")).content.decode()
    detail = client.get(reverse("support:report", args=[case.pk])).content.decode()
    for html in (listing, detail):
        assert clinician.get_full_name() in html and str(read.get_action_display()) in html
        assert TARGET not in html  # the document's title is health content
    assert team.name in detail and COMMENT in detail and str(clinician.get_role_display()) in detail

    key = uuid.uuid4()
    answer = {"answer": "Dr Martin remplaçait votre médecin ce jour-là.", "request_key": key}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("support:report", args=[case.pk]), answer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("support:report", args=[case.pk]), answer)  # a double submit
    # The patient is told, once, in both languages, without the answer (it names who read what).
    told = [email for email in mail.outbox if email.to == [patient.user.email]]
    assert len(told) == 1 and " / " in told[0].subject
    assert reverse("records:access_history") in told[0].body
    assert "a répondu à votre signalement" in told[0].body and "has answered your report" in told[0].body
    for secret in (answer["answer"], "Martin", TARGET, team.name):
        assert secret not in told[0].subject + told[0].body
    from portal.support import services as support_services

    assert support_services.tell_report_answered(report_id=case.pk) is False  # a retried task sends nothing
    case.refresh_from_db()
    assert (case.status, case.resolved_by, case.answer) == ("resolved", support, answer["answer"])
    trail = SupportAction.objects.get(action=SupportAction.Action.ANSWER_REPORT)
    assert (trail.agent, trail.patient, trail.reason, trail.detail) == (
        support,
        patient,
        answer["answer"],
        f"#{case.pk}",
    )
    assert TARGET not in client.get(reverse("support:report", args=[case.pk])).content.decode()

    login(patient)
    page = client.get(reverse("records:access_history")).content.decode()
    assert answer["answer"] in page
    assert f'id="report-{case.pk}"' in page and "Répondu" in page  # the case, its status, the answer


@pytest.mark.django_db
def test_a_line_reported_twice_opens_one_case_and_sends_one_copy(
    client, login, patient, read, django_capture_on_commit_callbacks
):
    login(patient)
    with django_capture_on_commit_callbacks(execute=True):
        report(client, read)
        report(client, read, comment="encore")
    assert AccessReport.objects.count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_comment_longer_than_200_characters_is_refused(client, login, patient, read):
    login(patient)
    report(client, read, comment="x" * 201)
    assert not AccessReport.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["other_patient", "clinician", "support"])
def test_no_one_but_the_patient_reports_a_line_of_their_history(client, login, request, read, who):
    login(request.getfixturevalue(who))
    assert report(client, read).status_code == 404
    assert client.post(reverse("records:report_access", args=[10**9])).status_code == 404
    assert not AccessReport.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["patient", "other_patient", "clinician"])
def test_only_support_sees_the_cases(client, login, request, patient, read, who):
    case = AccessReport.objects.create(access_log=read, patient=patient)
    login(request.getfixturevalue(who))
    assert client.get(reverse("support:reports")).status_code == 404
    assert client.get(reverse("support:report", args=[case.pk])).status_code == 404
    response = client.post(reverse("support:report", args=[case.pk]), {"answer": "x", "request_key": uuid.uuid4()})
    assert response.status_code == 404
    case.refresh_from_db()
    assert case.status == "open"


@pytest.mark.django_db
def test_an_unknown_case_is_404_for_support(client, login, support):
    login(support)
    assert client.get(reverse("support:report", args=[10**9])).status_code == 404


@pytest.mark.django_db
def test_the_copy_waits_for_the_relay_when_the_broker_is_down(
    patient, read, django_capture_on_commit_callbacks, monkeypatch
):
    """The copy is written with the case; when it could not be handed to Celery (a
    broker address nothing answers on) the periodic relay sends it, once."""
    import datetime

    from django.utils import timezone

    from portal.audit import services, tasks
    from portal.celery import app as celery_app
    from tests.conftest import forget_broker_connections

    with monkeypatch.context() as down:
        down.setitem(celery_app.conf, "task_always_eager", False)
        down.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
        down.setitem(celery_app.conf, "broker_transport_options", {"socket_connect_timeout": 0.5})
        forget_broker_connections()  # bound to the broker's address
        with django_capture_on_commit_callbacks(execute=True):
            case, opened = services.report_access(patient=patient, access_log=read)
        assert opened
        from portal import jobs

        assert jobs._broker_failed_at is not None  # the broker was really out of reach
    forget_broker_connections()
    assert mail.outbox == []
    AccessReport.objects.filter(pk=case.pk).update(created_at=timezone.now() - datetime.timedelta(minutes=5))
    tasks.relay_report_copies.apply()
    tasks.relay_report_copies.apply()
    assert len(mail.outbox) == 1 and re.search(rf"\b{case.pk}\b", mail.outbox[0].body)


@pytest.mark.django_db
def test_the_access_history_costs_the_same_queries_with_more_reports(client, login, patient, clinician):
    login(patient)
    client.get(reverse("records:access_history"))

    def history_queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("records:access_history")).status_code == 200
        return len(queries)

    one = access.trace_read(clinician, patient, AccessLog.Action.VIEW_RECORD)
    AccessReport.objects.create(access_log=one, patient=patient)
    before = history_queries()
    for number in range(5):  # five lines (different documents are not grouped), each reported
        row = access.trace_read(clinician, patient, AccessLog.Action.VIEW_DOCUMENT, f"document {number}")
        AccessReport.objects.create(access_log=row, patient=patient)
    assert history_queries() == before
