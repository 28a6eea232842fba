"""The messaging pages read a fixed number of queries, whatever the history's size: a
ceiling that holds for one conversation (or message) and for more than a page of them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from messaging import services
from portal.audit.models import AccessLog
from tests.factories import CareLinkFactory, ClinicianFactory, PatientFactory

pytestmark = pytest.mark.django_db

SMALL, LARGE = 1, 30  # one row; more than a page (25)


def conversations(patient, team, count, *, others=0):
    """``count`` conversations with ``patient`` and, when ``others``, as many with other
    patients of the team; a colleague assigned to some, replies from the team in some."""
    colleague = ClinicianFactory(teams=[team])
    patients = [patient] + [PatientFactory() for _ in range(others)]
    for other in patients[1:]:
        CareLinkFactory(patient=other, team=team)
    for n in range(count):
        whose = patients[n % len(patients)]
        conversation = services.start_conversation(
            author=whose.user, patient=whose, team=team, subject=f"Sujet {n}", kind="question", body="Bonjour"
        )
        if n % 3 == 0:
            services.assign_conversation(actor=colleague, conversation=conversation, assignee=colleague)
        if n % 4 == 0:
            services.send_message(author=colleague, conversation=conversation, body="Réponse")


def get(client, url, ceiling, django_assert_max_num_queries):
    client.get(url)  # the first request of a session may write to it
    with django_assert_max_num_queries(ceiling):
        response = client.get(url)
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("size", [SMALL, LARGE])
@pytest.mark.parametrize("filters", ["", "?assigned=none&status=open", "?kind=question&team=0&assigned=me"])
def test_the_team_inbox_has_a_ceiling(
    client, login, clinician, patient, team, size, filters, django_assert_max_num_queries
):
    conversations(patient, team, size, others=size)
    login(clinician)
    # The session, its user and second factor; the request's transaction (opened, closed),
    # the page, its access-log rows (a savepoint, the chains' locks and heads, one insert,
    # the release), the unread badge (the reader's unread markers, then, when there are
    # some, which of them the policy lets them read), the colleagues and teams.
    get(client, reverse("messaging:team_inbox") + filters, 15, django_assert_max_num_queries)


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_the_team_inbox_logs_each_conversation_shown_in_one_insert(client, login, clinician, patient, team, size):
    conversations(patient, team, size, others=size)
    login(clinician)
    url = reverse("messaging:team_inbox")
    client.get(url)
    logged = AccessLog.objects.filter(action=AccessLog.Action.LIST_CONVERSATIONS).count()
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    shown = min(size, 25)
    assert response.content.decode().count('<th scope="row">') == shown
    assert AccessLog.objects.filter(action=AccessLog.Action.LIST_CONVERSATIONS).count() == logged + shown
    inserts = [q for q in ctx.captured_queries if q["sql"].startswith('INSERT INTO "audit_accesslog"')]
    assert len(inserts) == 1


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_the_patient_inbox_has_a_ceiling(client, login, clinician, patient, team, size, django_assert_max_num_queries):
    conversations(patient, team, size)
    login(patient)
    # The badge reads two queries here: the team's replies are unread.
    get(client, reverse("messaging:inbox"), 10, django_assert_max_num_queries)


@pytest.mark.parametrize("size", [SMALL, 40])
@pytest.mark.parametrize("reader", ["patient", "clinician"])
def test_a_conversation_has_a_ceiling(
    client, login, clinician, patient, team, size, reader, django_assert_max_num_queries
):
    conversation = services.start_conversation(
        author=patient.user, patient=patient, team=team, subject="Fil", kind="question", body="Bonjour"
    )
    for n in range(size - 1):
        services.send_message(author=clinician if n % 2 else patient.user, conversation=conversation, body=f"{n}")
    login(patient if reader == "patient" else clinician)
    # A clinician's read is logged (five queries), and they see the assignment and templates.
    # The messages' attachments are asked for only when one has any.
    ceiling = 12 if reader == "patient" else 17
    response = get(
        client, reverse("messaging:conversation", args=[conversation.pk]), ceiling, django_assert_max_num_queries
    )
    assert response.content.decode().count('class="message-bubble') == size
