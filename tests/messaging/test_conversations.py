import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from messaging import services
from messaging.models import Conversation, Event, ImmutableError, Message
from portal.audit.models import AccessLog
from portal.careteams.models import CareLink, Membership
from tests.factories import ClinicianFactory
from tests.plans import rows_read

pytestmark = pytest.mark.django_db


def test_patient_starts_a_conversation_with_a_linked_team(client, login, patient, team):
    login(patient)
    page = client.get(reverse("messaging:new")).content.decode()
    assert "15" in page and "112" in page  # the emergency banner
    response = client.post(
        reverse("messaging:new"),
        {"team": team.pk, "kind": "question", "subject": "Vaccin grippe", "body": "Puis-je venir lundi ?"},
    )
    conversation = Conversation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("messaging:conversation", args=[conversation.pk])
    assert (conversation.patient, conversation.team, conversation.status) == (patient, team, "open")
    assert conversation.messages.get().body == "Puis-je venir lundi ?"


def test_patient_cannot_start_a_conversation_with_an_unrelated_team(client, login, patient, other_team):
    login(patient)
    response = client.post(
        reverse("messaging:new"), {"team": other_team.pk, "kind": "question", "subject": "Bonjour", "body": "Test"}
    )
    assert response.status_code == 200
    assert "le lien n’est pas actif" in response.content.decode()
    assert not Conversation.objects.exists()


def test_patient_cannot_start_a_conversation_with_a_blocked_team(client, login, patient, team):
    patient.care_links.update(status=CareLink.Status.BLOCKED)
    login(patient)
    response = client.post(
        reverse("messaging:new"), {"team": team.pk, "kind": "question", "subject": "Bonjour", "body": "Test"}
    )
    assert response.status_code == 200
    assert "Aucune équipe de soins à qui écrire" in response.content.decode()
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()


def test_empty_message_is_refused_next_to_the_field(client, login, patient, team):
    login(patient)
    response = client.post(
        reverse("messaging:new"), {"team": team.pk, "kind": "question", "subject": "Bonjour", "body": "   "}
    )
    assert response.status_code == 200
    assert "Écrivez un message." in response.content.decode()
    assert not Conversation.objects.exists()


def test_clinician_replies_and_the_patient_sees_team_and_clinician_names(client, login, clinician, conversation):
    login(clinician)
    response = client.post(reverse("messaging:conversation", args=[conversation.pk]), {"body": "Venez demain à 9 h."})
    assert response.status_code == 302
    reply = conversation.messages.last()
    assert (reply.author, reply.author_team) == (clinician, conversation.team)
    login(conversation.patient)
    page = client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    assert "Venez demain à 9 h." in page
    assert f"{clinician.get_full_name()} — {conversation.team.name}" in page


def test_each_reader_sees_their_own_side_apart_from_the_other(client, login, clinician, conversation):
    """The patient's messages and the team's sit on two sides; the reader's own side is
    the one marked as theirs (and their own messages say « Vous »), for either reader."""
    import re

    services.send_message(author=clinician, conversation=conversation, body="Venez demain à 9 h.")
    colleague = ClinicianFactory()
    conversation.team.memberships.create(user=colleague)

    def sides(page):
        return re.findall(r'class="message-bubble (from-\w+)( is-mine)?"', page)

    login(conversation.patient)
    page = client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    assert sides(page) == [("from-patient", " is-mine"), ("from-team", "")]
    assert "<strong>Vous</strong>" in page
    login(colleague)  # a team member who did not write: the team's side is still theirs
    page = client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    assert sides(page) == [("from-patient", ""), ("from-team", " is-mine")]
    assert f"{clinician.get_full_name()} — {conversation.team.name}" in page


def test_replying_to_a_closed_conversation_reopens_it(client, login, clinician, conversation):
    services.set_conversation_status(actor=clinician, conversation=conversation, status="closed")
    login(conversation.patient)
    client.post(reverse("messaging:conversation", args=[conversation.pk]), {"body": "Encore une question."})
    conversation.refresh_from_db()
    assert conversation.status == "open"
    assert list(conversation.events.values_list("kind", flat=True)) == ["sent", "closed", "reopened", "sent"]


def test_patient_cannot_reply_once_the_team_is_blocked(client, login, conversation):
    conversation.patient.care_links.update(status=CareLink.Status.BLOCKED)
    login(conversation.patient)
    response = client.post(reverse("messaging:conversation", args=[conversation.pk]), {"body": "Toujours là ?"})
    assert response.status_code == 200
    assert "son lien n’est pas actif" in response.content.decode()
    assert conversation.messages.count() == 1


def test_messages_are_immutable(conversation):
    message = conversation.messages.get()
    message.body = "changed"
    with pytest.raises(ImmutableError):
        message.save()
    with pytest.raises(ImmutableError):
        message.delete()
    with pytest.raises(ImmutableError):
        Message.objects.filter(pk=message.pk).update(body="changed")
    with pytest.raises(ImmutableError):
        Message.objects.filter(pk=message.pk).delete()


def test_unread_counts_per_participant(client, login, patient, clinician, conversation):
    services.send_message(author=clinician, conversation=conversation, body="Réponse 1")
    services.send_message(author=clinician, conversation=conversation, body="Réponse 2")
    unread = lambda user: Conversation.objects.with_unread_for(user).get(pk=conversation.pk).unread  # noqa: E731
    assert unread(patient.user) == 2
    assert unread(clinician) == 0
    login(patient)
    assert client.get(reverse("messaging:inbox")).context["unread_messages"]() == 2
    client.get(reverse("messaging:conversation", args=[conversation.pk]))
    assert unread(patient.user) == 0
    assert client.get(reverse("messaging:inbox")).context["unread_messages"]() == 0


@pytest.mark.parametrize("role", ["patient", "clinician"])
def test_the_badge_asks_nothing_more_when_the_users_row_says_nothing_is_unread(
    client, login, patient, clinician, conversation, role
):
    """The SELECT of the signed-in user tells whether anything is unread for them
    (messaging's KeyedRow.also_exists); only then does the badge query its markers."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    reader, writer = (patient.user, clinician) if role == "patient" else (clinician, patient.user)
    services.mark_read(user=reader, conversation=conversation)
    login(reader)

    def badge():
        with CaptureQueriesContext(connection) as queries:
            count = client.get(reverse("help")).context["unread_messages"]()
        return count, [q["sql"] for q in queries if "messaging_readstate" in q["sql"]]

    count, selects = badge()
    assert count == 0
    assert len(selects) == 1 and "accounts_user" in selects[0]  # the user's own row, nothing else
    services.send_message(author=writer, conversation=conversation, body="Nouveau")
    count, selects = badge()
    assert count == 1
    assert len(selects) > 1  # the markers, then the conversations they are in


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_badges_count_is_a_number_any_plural_rule_computes_with(
    client, login, patient, clinician, conversation, language
):
    """A plural rule is arithmetic on the count (Django's French one: ``n % 1000000``),
    run for each catalogue that lacks the text: given the context's value, a text
    found in no catalogue of ours takes its plural form, whatever the count."""
    from django.template import Context, Template
    from django.utils import translation

    for body in ("1", "2", "3"):
        services.send_message(author=clinician, conversation=conversation, body=body)
    login(patient)
    count = client.get(reverse("messaging:inbox")).context["unread_messages"]
    template = Template(
        "{% load translations %}{% blocktranslate count counter=unread_messages %}"
        "one thing no catalogue has{% plural %}things no catalogue has{% endblocktranslate %}"
    )
    with translation.override(language):
        assert template.render(Context({"unread_messages": count})) == "things no catalogue has"


def test_colleague_sees_the_patients_message_unread_in_the_team_inbox(client, login, patient, team):
    colleague = ClinicianFactory(teams=[team])
    conversation = services.start_conversation(
        author=patient.user, patient=patient, team=team, subject="Genou", kind="question", body="J’ai mal."
    )
    login(colleague)
    page = client.get(reverse("messaging:team_inbox"))
    row = page.context["page"].object_list[0]
    assert (row.pk, row.unread) == (conversation.pk, 1)
    assert page.context["unread_messages"]() == 1


def test_unread_counts_follow_replies_reads_and_the_access_policy(client, login, patient, clinician, team):
    """Counters kept with each message agree with what each reader has not read, and
    the badge counts only conversations the reader may still open."""
    conversation = services.start_conversation(
        author=patient.user, patient=patient, team=team, subject="Genou", kind="question", body="1"
    )
    services.send_message(author=patient.user, conversation=conversation, body="2")
    colleague = ClinicianFactory(teams=[team])  # joins now: what arrives from now on is unread for them
    services.send_message(author=clinician, conversation=conversation, body="3")
    services.send_message(author=patient.user, conversation=conversation, body="4")
    unread = lambda user: Conversation.objects.with_unread_for(user).get(pk=conversation.pk).unread  # noqa: E731
    assert (unread(clinician), unread(colleague), unread(patient.user)) == (1, 2, 0)
    services.mark_read(user=colleague, conversation=conversation)
    assert unread(colleague) == 0
    login(clinician)
    assert client.get(reverse("messaging:team_inbox")).context["unread_messages"]() == 1
    patient.care_links.update(status="blocked")  # no longer theirs: nothing counted
    assert client.get(reverse("messaging:team_inbox")).context["unread_messages"]() == 0


def test_the_badge_reads_as_many_rows_whatever_the_history(patient, team, clinician, postgres):
    """EXPLAIN (ANALYZE, BUFFERS) of the badge's queries: the rows and buffers they read
    are the same after 10 messages and after 2,000 (only conversations left unread count)."""
    import json

    from django.db import connection

    from messaging.models import Message, ReadState
    from portal import access

    conversations = [
        services.start_conversation(
            author=patient.user, patient=patient, team=team, subject=f"S{i}", kind="question", body="."
        )
        for i in range(5)
    ]

    def cost(history):
        Message.objects.bulk_create(
            [Message(conversation=conversations[i % 5], author=patient.user, body="ancien") for i in range(history)]
        )
        for conversation in conversations[1:]:
            services.mark_read(user=patient.user, conversation=conversation)
        services.send_message(author=clinician, conversation=conversations[0], body="réponse")
        mine = access.conversations_for(patient.user)
        unread = ReadState.objects.unread_by(patient.user)
        total_rows, total_buffers = 0, 0
        for query in (
            ReadState.objects.filter(user=patient.user, unread__gt=0)
            .order_by()
            .values_list("conversation_id", "unread"),
            mine.filter(pk__in=list(unread)).values_list("pk", flat=True),
        ):
            sql, params = query.query.sql_with_params()
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
                plan = cursor.fetchone()[0]
            plan = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
            total_rows += rows_read(plan)
            total_buffers += plan["Shared Hit Blocks"] + plan.get("Shared Read Blocks", 0)
        return total_rows, total_buffers

    small = cost(10)
    assert Message.objects.filter(conversation__in=conversations).count() < 25
    large = cost(1_990)
    assert Message.objects.filter(conversation__in=conversations).count() > 2_000
    assert ReadState.objects.unread_total(patient.user, access.conversations_for(patient.user)) == 2
    assert large[0] == small[0], (small, large)
    assert large[1] <= small[1] + 2, (small, large)


def test_assign_close_and_reopen_are_traced(client, login, clinician, team, conversation):
    colleague = ClinicianFactory(teams=[team])
    login(clinician)
    client.post(reverse("messaging:assign", args=[conversation.pk]), {"assignee": colleague.pk})
    client.post(reverse("messaging:status", args=[conversation.pk]), {"status": "closed"})
    client.post(reverse("messaging:status", args=[conversation.pk]), {"status": "open"})
    conversation.refresh_from_db()
    assert conversation.assigned_to == colleague
    events = list(conversation.events.exclude(kind__in=["sent", "read"]).values_list("kind", "subject_user"))
    assert events == [("assigned", colleague.pk), ("closed", None), ("reopened", None)]


def test_cannot_assign_to_someone_outside_the_team(client, login, clinician, other_clinician, conversation):
    login(clinician)
    response = client.post(reverse("messaging:assign", args=[conversation.pk]), {"assignee": other_clinician.pk})
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.assigned_to is None
    assert not conversation.events.filter(kind="assigned").exists()


def test_unknown_status_changes_nothing(client, login, clinician, conversation):
    login(clinician)
    client.post(reverse("messaging:status", args=[conversation.pk]), {"status": "deleted"})
    conversation.refresh_from_db()
    assert conversation.status == "open"


def test_team_inbox_filters(client, login, clinician, team, patient, conversation):
    other = services.start_conversation(
        author=clinician, patient=patient, team=team, subject="Résultats", kind="result", body="Vos résultats."
    )
    services.assign_conversation(actor=clinician, conversation=other, assignee=clinician)
    services.set_conversation_status(actor=clinician, conversation=other, status="closed")
    login(clinician)

    def listed(**params):
        return [c.pk for c in client.get(reverse("messaging:team_inbox"), params).context["page"].object_list]

    assert set(listed()) == {conversation.pk, other.pk}
    assert listed(status="open") == [conversation.pk]
    assert listed(status="closed") == [other.pk]
    assert listed(assigned="none") == [conversation.pk]
    assert listed(assigned="me") == [other.pk]
    assert listed(assigned=str(clinician.pk)) == [other.pk]
    assert listed(kind="result") == [other.pk]
    assert set(listed(status="bogus", kind="<script>")) == {conversation.pk, other.pk}


def test_clinician_starts_a_conversation_with_a_patient_of_their_team(client, login, clinician, patient, team):
    login(clinician)
    response = client.post(
        reverse("messaging:team_new", args=[patient.pk]),
        {"team": team.pk, "kind": "administrative", "subject": "Rendez-vous", "body": "Merci de rappeler."},
    )
    conversation = Conversation.objects.get()
    assert response["Location"] == reverse("messaging:conversation", args=[conversation.pk])
    assert conversation.started_by == clinician
    assert conversation.messages.get().author_team == team


def test_a_clinicians_new_conversation_is_the_teams_not_the_patients(client, login, clinician, patient, team):
    """Their only team chosen for them; the kinds a team writes (a renewal or a move is
    the patient's request); no emergency warning meant for patients."""
    login(clinician)
    page = client.get(reverse("messaging:team_new", args=[patient.pk]))
    form = page.context["form"]
    assert form["team"].value() == team.pk
    kinds = [kind for kind, _label in form.fields["kind"].choices]
    assert kinds == ["question", "result", "administrative"]
    assert "SAMU" not in page.content.decode()
    login(patient.user)
    patients = client.get(reverse("messaging:new"))
    assert patients.context["form"]["team"].value() is None and "SAMU" in patients.content.decode()
    assert "renewal" in [kind for kind, _label in patients.context["form"].fields["kind"].choices]


def test_a_clinician_reading_a_conversation_is_in_the_patients_access_history(client, login, clinician, conversation):
    login(clinician)
    client.get(reverse("messaging:conversation", args=[conversation.pk]))
    log = AccessLog.objects.get()
    assert (log.patient, log.actor, log.action, log.target) == (
        conversation.patient,
        clinician,
        "read_conversation",
        "Douleur au genou",
    )
    assert conversation.events.filter(kind=Event.Kind.READ, actor=clinician).exists()


def test_the_patients_own_reads_are_not_in_the_access_log(client, login, conversation):
    login(conversation.patient)
    client.get(reverse("messaging:conversation", args=[conversation.pk]))
    assert not AccessLog.objects.exists()


def test_reply_templates_prefill_the_reply(client, login, clinician, team, conversation):
    login(clinician)
    client.post(
        reverse("messaging:reply_templates"), {"team": team.pk, "title": "RDV", "body": "Prenez rendez-vous en ligne."}
    )
    template = team.reply_templates.get()
    url = reverse("messaging:conversation", args=[conversation.pk])
    assert 'data-body="Prenez rendez-vous en ligne."' in client.get(url).content.decode()  # for the page's script
    # Without the script: the template is added to the draft, which is kept; nothing is sent.
    sent = conversation.messages.count()
    page = client.post(url, {"body": "Bonjour,", "template": template.pk, "use_template": "1"})
    assert page.status_code == 200
    assert page.context["form"]["body"].value() == "Bonjour,\n\nPrenez rendez-vous en ligne."
    assert conversation.messages.count() == sent
    page = client.post(url, {"body": "", "template": template.pk, "use_template": "1"})
    assert page.context["form"]["body"].value() == "Prenez rendez-vous en ligne."
    # Another team's template, or nonsense: the draft comes back as it was.
    for other in ("²", "999999", "x"):
        page = client.post(url, {"body": "Bonjour,", "template": other, "use_template": "1"})
        assert page.status_code == 200 and page.context["form"]["body"].value() == "Bonjour,"
    client.post(reverse("messaging:delete_reply_template", args=[template.pk]))
    assert not team.reply_templates.exists()


def test_another_teams_template_cannot_be_deleted(client, login, other_clinician, team):
    template = team.reply_templates.create(title="RDV", body="...")
    login(other_clinician)
    assert client.post(reverse("messaging:delete_reply_template", args=[template.pk])).status_code == 404
    assert team.reply_templates.exists()


def count_queries(client, url):
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx)


def test_inbox_and_conversation_query_counts_do_not_grow(client, login, clinician, patient, team, conversation):
    urls = {
        "patient_inbox": (patient, reverse("messaging:inbox")),
        "team_inbox": (clinician, reverse("messaging:team_inbox")),
        "conversation_patient": (patient, reverse("messaging:conversation", args=[conversation.pk])),
        "conversation_clinician": (clinician, reverse("messaging:conversation", args=[conversation.pk])),
    }
    # Something unread for each reader from the start (the badge reads the unread
    # conversations' policy only when there are some): only the history grows below.
    services.send_message(author=clinician, conversation=conversation, body="Réponse")
    services.start_conversation(
        author=patient.user, patient=patient, team=team, subject="Autre", kind="question", body="..."
    )
    before = {}
    for name, (who, url) in urls.items():
        login(who)
        before[name] = count_queries(client, url)
    for n in range(12):
        services.start_conversation(
            author=patient.user, patient=patient, team=team, subject=f"Sujet {n}", kind="question", body="..."
        )
        services.send_message(author=clinician, conversation=conversation, body=f"Message {n}")
    for name, (who, url) in urls.items():
        login(who)
        # A clinician's read adds one access-log row per view: same count each time.
        assert count_queries(client, url) == before[name], name


def test_a_long_conversation_shows_its_latest_messages_and_earlier_ones_a_link_away(
    client, login, patient, conversation
):
    """The page shows the latest 50 messages (it costs what a short conversation costs);
    « Messages précédents » shows the ones before, each once, without polling."""
    from messaging.models import Message
    from messaging.views import THREAD_SHOWN

    Message.objects.bulk_create(
        [Message(conversation=conversation, author=patient.user, body=f"message {i}") for i in range(THREAD_SHOWN + 9)]
    )
    everything = list(conversation.messages.order_by("pk").values_list("pk", flat=True))
    login(patient)
    url = reverse("messaging:conversation", args=[conversation.pk])
    latest = client.get(url)
    shown = [m["pk"] for m in latest.context["thread"]]
    assert shown == everything[-THREAD_SHOWN:]
    assert latest.context["earlier"] == shown[0]
    assert "Messages précédents" in latest.content.decode()
    earlier = client.get(url, {"before": latest.context["earlier"]})
    assert [m["pk"] for m in earlier.context["thread"]] == everything[:-THREAD_SHOWN]
    assert earlier.context["earlier"] is None
    page = earlier.content.decode()
    assert "Derniers messages" in page and "hx-trigger" not in page  # an earlier page is not polled
    assert "hx-trigger" in latest.content.decode()
    # The poll brings what came after the latest shown, and only that.
    Message.objects.create(conversation=conversation, author=patient.user, body="encore un")
    poll = client.get(
        reverse("messaging:thread", args=[conversation.pk]), {"after": shown[-1]}, HTTP_X_CARNET_BACKGROUND="1"
    )
    assert [m["body"] for m in poll.context["thread"]] == ["encore un"]
    # Each of these queries kept its SQL (portal.prepared), as the unread badge's did.
    from messaging import views

    for builder in (views._newest_messages, views._newest_messages_before, views._messages_after):
        shapes = builder.prepared_shapes()
        assert shapes and all(shapes.values()), builder.__name__


def test_the_team_inbox_rows_escape_what_they_show(client, login, patient, team, other_team):
    """Each row is written in Python (messaging.views.TEAM_INBOX_ROW): every value is escaped
    as the template escapes it, every cell is labelled with its column."""
    colleague = ClinicianFactory(first_name="Zoé <i>", last_name="O'Neil & co", teams=[team, other_team])
    patient.first_name, patient.last_name = 'Camille "<b>"', "d'Urand"
    patient.save()
    conversation = services.start_conversation(
        author=patient.user, patient=patient, team=team, subject="<script>alert(1)</script> & « genou »",
        kind="question", body="J’ai mal.",
    )  # fmt: skip
    services.assign_conversation(actor=colleague, conversation=conversation, assignee=colleague)
    login(colleague)
    page = client.get(reverse("messaging:team_inbox")).content.decode()
    url = reverse("messaging:conversation", args=[conversation.pk])
    assert '<tr class="is-unread">' in page
    assert (
        f'<th scope="row"><a href="{url}">&lt;script&gt;alert(1)&lt;/script&gt; &amp; « genou »</a>'
        "<br><small>Cabinet médical des Tilleuls</small></th>"
    ) in page
    assert '<td data-label="Patient">D&#x27;URAND Camille &quot;&lt;b&gt;&quot;</td>' in page
    assert '<td data-label="Attribuée à">Zoé &lt;i&gt; O&#x27;Neil &amp; co</td>' in page
    assert '<td data-label="Non lus"><span class="badge">1</span></td>' in page
    assert "<script>" not in page.split("<main")[1].split("</main>")[0]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_patients_inbox_rows_escape_what_they_show(client, login, patient, clinician, team, language):
    """Each row is written in Python (messaging.views.INBOX_ROW): every value escaped as the
    template escapes it, the unread count in the reader's language."""
    team.name = "Pneumo <&> « B »"
    team.save()
    conversation = services.start_conversation(
        author=patient.user, patient=patient, team=team, subject="<script>alert(1)</script> & « genou »",
        kind="question", body="J’ai mal.",
    )  # fmt: skip
    for body in ("Réponse", "Et encore"):
        services.send_message(author=clinician, conversation=conversation, body=body)
    quiet = services.start_conversation(
        author=patient.user, patient=patient, team=team, subject="Ordonnance", kind="renewal", body="Merci"
    )
    login(patient)
    page = client.get(reverse("messaging:inbox"), headers={"accept-language": language}).content.decode()
    url, quiet_url = (reverse("messaging:conversation", args=[c.pk]) for c in (conversation, quiet))
    rows = page.split('<ul class="conversation-list">')[1].split("</ul>")[0]
    unread, kind, status = {"fr": ("2 non lus", "Question", "Ouverte"), "en": ("2 unread", "Question", "Open")}[
        language
    ]
    assert (
        '<li class="conversation-item is-unread">\n'
        f'          <a href="{url}">&lt;script&gt;alert(1)&lt;/script&gt; &amp; « genou »</a>\n'
        f"          <span>Pneumo &lt;&amp;&gt; « B » · {kind} · {status}</span>"
    ) in rows
    assert f'<span class="badge">{unread}</span>' in rows
    assert f'<li class="conversation-item">\n          <a href="{quiet_url}">Ordonnance</a>' in rows
    assert rows.count("<li ") == 2 and rows.count('class="badge"') == 1 and "<script>" not in rows


def test_the_team_inbox_filters_list_colleagues_and_teams_escaped(client, login, clinician, team, other_team):
    Membership.objects.create(team=other_team, user=clinician)
    other_team.name = "Pneumo <&> « B »"
    other_team.save()
    colleague = ClinicianFactory(first_name="Zoé <i>", last_name="O'Neil", teams=[other_team])
    login(clinician)
    page = client.get(reverse("messaging:team_inbox"), {"assigned": colleague.pk, "team": other_team.pk}).content
    page = page.decode()
    assert f'<option value="{colleague.pk}" selected>Zoé &lt;i&gt; O&#x27;Neil</option>' in page
    assert f'<option value="{other_team.pk}" selected>Pneumo &lt;&amp;&gt; « B »</option>' in page
    assert f'<option value="{team.pk}">Cabinet médical des Tilleuls</option>' in page
    assert '<option value="open">Ouverte</option><option value="closed">Fermée</option>' in page


def test_the_team_inbox_filters_list_each_active_colleague_once_by_name(client, login, clinician, team, other_team):
    """Both filters come from one query of the teams' memberships (access.teams_and_colleagues):
    the clinician's own teams by name; the other active clinicians of any of them, each
    once (in two teams too), by last then first name; not the clinician, not an inactive one,
    not a colleague of a team they are not in."""
    import re

    from portal.careteams.models import CareTeam

    Membership.objects.create(team=other_team, user=clinician)
    both = ClinicianFactory(first_name="Anne", last_name="Zola", teams=[team, other_team])
    first = ClinicianFactory(first_name="Bruno", last_name="Abel", teams=[other_team])
    same_name = ClinicianFactory(first_name="Alice", last_name="Abel", teams=[team])
    ClinicianFactory(first_name="Ines", last_name="Inactive", teams=[team], is_active=False)
    ClinicianFactory(first_name="Yves", last_name="Ailleurs", teams=[CareTeam.objects.create(name="Ailleurs")])
    login(clinician)
    page = client.get(reverse("messaging:team_inbox")).content.decode()
    assigned = page.split('name="assigned"')[1].split("</select>")[0]
    listed = [int(pk) for pk in re.findall(r'<option value="(\d+)"', assigned)]
    assert listed == [same_name.pk, first.pk, both.pk]
    teams = page.split('name="team"')[1].split("</select>")[0]
    assert [int(pk) for pk in re.findall(r'<option value="(\d+)"', teams)] == [
        pk for pk, _name in sorted(((team.pk, team.name), (other_team.pk, other_team.name)), key=lambda t: t[1])
    ]


def test_a_conversation_page_escapes_what_its_messages_say(client, login, patient, clinician, team):
    """The thread is written in Python (messaging.views._dressed): bodies, names and the
    team's name reach the page escaped, on the page and in the polled news."""
    team.name = "Cardio <b>&</b>"
    team.save()
    clinician.first_name, clinician.last_name = "<i>Claire</i>", "O'Neil"
    clinician.save()
    conversation = services.start_conversation(
        author=patient.user, patient=patient, team=team, subject="Genou", kind="question",
        body='<img src=x onerror="alert(1)">\nligne 2',
    )  # fmt: skip
    services.send_message(author=clinician, conversation=conversation, body="<script>alert(2)</script>")
    login(patient)
    page = client.get(reverse("messaging:conversation", args=[conversation.pk])).content.decode()
    main = page.split("<main")[1].split("</main>")[0]
    assert "<script>" not in main and "<img" not in main and "<i>" not in main and "<b>&" not in main
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;<br>ligne 2" in main
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in main
    assert "&lt;i&gt;Claire&lt;/i&gt; O&#x27;Neil — Cardio &lt;b&gt;&amp;&lt;/b&gt;" in main
    news = client.get(
        reverse("messaging:thread", args=[conversation.pk]) + "?after=0", HTTP_X_CARNET_BACKGROUND="1"
    ).content.decode()
    assert "<script>" not in news and "&lt;script&gt;alert(2)&lt;/script&gt;" in news


def test_a_message_typed_is_not_restored_by_the_browser_after_it_was_sent(client, login, patient, conversation):
    """Back after Send shows the page again with a new form: a body the browser put back
    would be sent twice by a second Send (a product walk did it), so it puts none back."""
    login(patient)
    for url in (reverse("messaging:conversation", args=[conversation.pk]), reverse("messaging:new")):
        html = client.get(url).content.decode()
        assert re.search(r'<textarea name="body"[^>]* autocomplete="off"', html), url


@pytest.mark.parametrize(
    ("route", "data"),
    [("messaging:assign", {"assignee": ""}), ("messaging:status", {"status": "closed"}),
     ("messaging:set_confidential", {"confidential": "1"})],
)  # fmt: skip
def test_the_reply_being_written_survives_managing_the_conversation(
    client, login, clinician, conversation, route, data
):
    """The page's script sends the draft along with assign, close and confidential: it
    comes back in the reply box once, and is not kept after that."""
    login(clinician)
    page = reverse("messaging:conversation", args=[conversation.pk])
    client.post(reverse(route, args=[conversation.pk]), {**data, "draft": "Bonjour, je regarde <vos> résultats"})
    assert "Bonjour, je regarde &lt;vos&gt; résultats</textarea>" in client.get(page).content.decode()
    assert "je regarde" not in client.get(page).content.decode()


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_reply_fields_are_written_as_the_form_writes_them(
    client, login, patient, clinician, conversation, language
):
    """A new, empty reply's fields are written once per language (portal.widgets.
    empty_form_html): what the form writes, for the patient and the team; a draft kept
    for the reader, a template added without the script and a refused reply are written
    as they are, with their errors, and never shown to the next visit."""
    from django.template.loader import render_to_string
    from django.utils import translation

    from messaging.forms import ReplyForm

    client.cookies["django_language"] = language
    url = reverse("messaging:conversation", args=[conversation.pk])
    with translation.override(language):
        empty = render_to_string("messaging/reply_fields.html", {"form": ReplyForm()})
    for reader in (patient.user, clinician):
        login(reader)
        assert empty in client.get(url).content.decode()
    client.post(reverse("messaging:status", args=[conversation.pk]), {"status": "open", "draft": "Brouillon <b>"})
    drafted = client.get(url).content.decode()
    assert empty not in drafted and "Brouillon &lt;b&gt;</textarea>" in drafted
    refused = client.post(url, {"body": "   "}).content.decode()
    assert empty not in refused and 'class="errorlist"' in refused and "error-summary" in refused
    again = client.get(url).content.decode()
    assert empty in again and "Brouillon" not in again and "error-summary" not in again
