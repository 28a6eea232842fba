import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.formats import localize
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST, require_safe

from messaging import services
from messaging.forms import (
    BODY_MAX_LENGTH,
    AssignForm,
    NewConversationForm,
    ReplyForm,
    ReplyTemplateForm,
)
from messaging.models import Attachment, Conversation, Message, ReplyTemplate
from portal import access, rows, widgets
from portal.accounts.models import User
from portal.audit.models import AccessLog
from portal.idempotency import idempotent
from portal.middleware import allows_upload
from portal.pagination import Rows, keyset_page
from portal.prepared import prepared
from records import files

PAGE_SIZE = 25


def _bound(request):
    """Form data and files of a POST; nothing for a GET."""
    return (request.POST, request.FILES) if request.method == "POST" else (None, None)


DRAFT_SESSION_KEY = "reply-draft-%s"


def _back_to_conversation(request, conversation):
    """Back to the conversation after one of its management forms (assign, close, keep
    from the representatives): the reply being written, which the page's script sends
    along as ``draft``, is kept in the session and put back in the reply box."""
    draft = request.POST.get("draft", "").strip()
    if draft:
        request.session[DRAFT_SESSION_KEY % conversation.pk] = draft[:BODY_MAX_LENGTH]
    return redirect("messaging:conversation", conversation.pk)


@access.role_required(User.Role.PATIENT)
@require_safe
def inbox(request):
    """The conversations of the record one is in, newest activity first, with unread counts."""
    record = access.record_for(request, access.MESSAGES)
    patient = record.patient
    conversations = Rows.of(_inbox_rows, request.user.pk, patient.pk, rows=access.rows_shape(record, Conversation))
    page = keyset_page(conversations, request.GET, field="last_message_at", size=PAGE_SIZE)
    context = {"page": page, "rows_html": _inbox_rows_html(page.object_list)}
    return access.render_record(
        request, "messaging/inbox.html", context, patient=patient, action=AccessLog.Action.VIEW_RECORD
    )


def _inbox_rows(user_id, patient_id, *, rows):
    """The patient's inbox (``rows``: access.rows_shape's for the record): a builder of
    prepared queries (``portal.prepared``)."""
    conversations = access.rows_of_shape(patient_id, rows).select_related("team")
    return conversations.only("subject", "kind", "status", "last_message_at", "team__name").with_unread_for(user_id)


# A row of the patient's inbox, written in Python with each value escaped as the template
# escapes it (portal.rows.escaped): as a template, its rows cost more than the page's queries.
INBOX_ROW = """
        <li class="conversation-item{unread_class}">
          <a href="{url}">{subject}</a>
          <span>{team} · {kind} · {status}</span>
          <span>{last}</span>{badge}
        </li>"""


def _inbox_rows_html(conversations) -> str:
    """The patient's inbox rows: each conversation's link, team, type, status, last
    message's date and unread count, worked out once per page (see ``portal.rows``)."""
    escaped = rows.escaped
    statuses, kinds = ({key: escaped(label) for key, label in rows.labels_of(choices).items()}
                       for choices in (Conversation.Status.choices, Conversation.Kind.choices))  # fmt: skip
    url, when = (
        rows.url_by_pk("messaging:conversation", as_html=True),
        rows.date_formatter("SHORT_DATETIME_FORMAT", as_html=True),
    )
    written = []
    for conversation in conversations:
        unread = conversation.unread
        badge = ""
        if unread:
            count = ngettext("%(counter)s unread", "%(counter)s unread", unread) % {"counter": localize(unread)}
            badge = f'<span class="badge">{escaped(count)}</span>'
        written.append(
            INBOX_ROW.format(
                unread_class=" is-unread" if unread else "",
                url=url(conversation.pk),
                subject=escaped(conversation.subject),
                team=escaped(conversation.team.name),
                kind=kinds.get(conversation.kind) or escaped(conversation.kind),
                status=statuses.get(conversation.status) or escaped(conversation.status),
                last=when(conversation.last_message_at),
                badge=badge,
            )
        )
    return mark_safe("".join(written))  # noqa: S308 (every value escaped)


def _field_of(error) -> str | None:
    """Where a refusal of ``messaging.services`` shows in the form: the text, the files,
    or above the form when nobody could read the message."""
    return {"empty": "body", "nobody_reads": None}.get(error.code, "attachments")


def _new_conversation(request, *, patient, teams):
    """The new-conversation form, for a patient or a clinician: ``teams`` are those
    the author may write to or for."""
    parts = None if request.user.is_clinician else access.current_record(request).parts
    form = NewConversationForm(*_bound(request), teams=teams, by_care_team=request.user.is_clinician, parts=parts)
    if request.method == "POST" and form.is_valid():
        try:
            conversation = services.start_conversation(author=request.user, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(_field_of(error), error)
        else:
            messages.success(request, _("Your message has been sent."))
            return redirect("messaging:conversation", conversation.pk)
    return access.render_record(
        request, "messaging/new.html", {"form": form, "patient": patient},
        patient=patient, action=AccessLog.Action.VIEW_RECORD,
    )  # fmt: skip


@allows_upload("MESSAGE_ATTACHMENTS_MAX_BYTES")
@access.role_required(User.Role.PATIENT)
@idempotent
def new_conversation(request):
    patient = access.record_for(request, access.MESSAGES).patient
    teams = access.teams_patient_can_write_to(patient)
    return _new_conversation(request, patient=patient, teams=teams)


# What the team inbox reads of each row (and of the rows it joins), as named tuples rather
# than model instances: the page, its access log (patient, team, subject) and its cursor (pk)
# need nothing else.
TEAM_INBOX_FIELDS = (
    "pk", "subject", "kind", "status", "last_message_at", "unread", "patient_id", "team_id", "assigned_to_id",
    "patient__first_name", "patient__last_name", "team__name", "assigned_to__first_name", "assigned_to__last_name",
)  # fmt: skip


@access.role_required(User.Role.CLINICIAN)
@require_safe
def team_inbox(request):
    """The shared inbox of the clinician's care teams, with filters."""
    teams, colleagues = access.teams_and_colleagues(request.user.pk)  # an active clinician's (role_required)
    filters = {key: request.GET.get(key, "") for key in ("status", "assigned", "kind", "team")}
    chosen = {}  # lookup: value
    if filters["status"] in Conversation.Status.values:
        chosen["status"] = filters["status"]
    if filters["kind"] in Conversation.Kind.values:
        chosen["kind"] = filters["kind"]
    if filters["team"].isdecimal():
        chosen["team_id"] = int(filters["team"])
    if filters["assigned"] == "me":
        chosen["assigned_to_id"] = request.user.pk
    elif filters["assigned"].isdecimal():
        chosen["assigned_to_id"] = int(filters["assigned"])
    conversations = Rows.of(
        _team_inbox_conversations, request.user.pk, *chosen.values(),
        lookups=tuple(chosen), unassigned=filters["assigned"] == "none",
    )  # fmt: skip
    page = keyset_page(conversations, request.GET, field="last_message_at", size=PAGE_SIZE)
    access.trace_listed_conversations(request.user, page.object_list)
    statuses, kinds = rows.labels_of(Conversation.Status.choices), rows.labels_of(Conversation.Kind.choices)
    columns = _team_inbox_columns()
    several_teams = len(teams) > 1
    context = {
        "page": page,
        "rows": _team_inbox_rows(page.object_list, columns, several_teams, statuses=statuses, kinds=kinds),
        "columns": columns,
        "filters": filters,
        "several_teams": several_teams,
        # Each filter's options after its fixed ones, the one asked for selected.
        "status_options": _options(statuses.items(), filters["status"]),
        # User.get_full_name, of the fields read
        "colleague_options": _options(
            ((pk, f"{first} {last}".strip()) for pk, first, last in colleagues), filters["assigned"]
        ),
        "kind_options": _options(kinds.items(), filters["kind"]),
        "team_options": _options(teams, filters["team"]) if several_teams else "",
    }
    return render(request, "messaging/team_inbox.html", context)


def _team_inbox_conversations(user_id, *values, lookups, unassigned):
    """The team inbox of the clinician ``user_id`` (``access.conversations_for``), filtered
    by ``lookups`` (each a field) equal to ``values``, and to the unassigned ones: a
    builder of prepared queries (``portal.prepared``)."""
    conversations = access.clinicians_conversations(user_id).with_unread_for(user_id)
    conversations = conversations.values_list(*TEAM_INBOX_FIELDS, named=True).filter(
        **dict(zip(lookups, values, strict=True))
    )
    return conversations.filter(assigned_to__isnull=True) if unassigned else conversations


def _options(choices, chosen):
    """``<option>`` elements of ``choices`` (value, label), the one whose value is ``chosen``
    (a value of the query string) selected, each value escaped as the template escapes it."""
    escaped = rows.escaped
    options = [
        f'<option value="{escaped(value)}"{" selected" if chosen == str(value) else ""}>{escaped(label)}</option>'
        for value, label in choices
    ]
    return mark_safe("".join(options))  # noqa: S308 (every value escaped)


def _team_inbox_columns() -> dict:
    """The team inbox's column names: its table's headings and each cell's ``data-label``
    (the heading a narrow screen shows beside the value)."""
    return {
        "patient": _("Patient"),
        "type": _("Type"),
        "status": _("Status"),
        "assigned": _("Assigned to"),
        "last": _("Last message"),
        "unread": _("Unread"),
    }


# One row of messaging/team_inbox.html's table, written in Python with each value escaped as
# the template escapes it (portal.rows.escaped): as a template it was 17 variables and 3
# conditions a row, some 400 Python calls each, 25 times a page. The column names, the
# same on every row, are escaped and put in once per page (``_team_inbox_rows``).
TEAM_INBOX_ROW = """
            <tr class="{unread_class}">
              <th scope="row"><a href="{url}">{subject}</a>{team}</th>
              <td data-label="{patient_label}">{patient}</td>
              <td data-label="{type_label}">{kind}</td>
              <td data-label="{status_label}">{status}</td>
              <td data-label="{assigned_label}">{assignee}</td>
              <td data-label="{last_label}">{last}</td>
              <td data-label="{unread_label}">{unread}</td>
            </tr>
          """


def _team_inbox_rows(conversations, columns, several_teams, *, statuses, kinds) -> str:
    """The rows of the team inbox's table for ``conversations`` (of ``TEAM_INBOX_FIELDS``):
    the subject (a link, the team's name below it when the clinician is in several teams),
    the patient, type, status, assignee, last message's date and unread count, each cell
    labelled with its column (``data-label``, the heading a narrow screen shows beside the
    value); links, labels and dates worked out once per page (see ``portal.rows``)."""
    escaped = rows.escaped
    url, when = (
        rows.url_by_pk("messaging:conversation", as_html=True),
        rows.date_formatter("SHORT_DATETIME_FORMAT", as_html=True),
    )
    labels = {f"{key}_label": escaped(label) for key, label in columns.items()}
    row = functools.partial(TEAM_INBOX_ROW.format, **labels)
    kinds, statuses = ({key: escaped(label) for key, label in choices.items()} for choices in (kinds, statuses))
    written = []
    for conversation in conversations:
        unread = conversation.unread
        assignee = ""
        if conversation.assigned_to_id is not None:  # User.get_full_name, of the fields read
            assignee = f"{conversation.assigned_to__first_name} {conversation.assigned_to__last_name}".strip()
        written.append(
            row(
                unread_class="is-unread" if unread else "",
                url=url(conversation.pk),
                subject=escaped(conversation.subject),
                team=f"<br><small>{escaped(conversation.team__name)}</small>" if several_teams else "",
                patient=escaped(f"{conversation.patient__last_name.upper()} {conversation.patient__first_name}"),
                kind=kinds.get(conversation.kind) or escaped(conversation.kind),
                status=statuses.get(conversation.status) or escaped(conversation.status),
                assignee=escaped(assignee or "—"),
                last=when(conversation.last_message_at),
                unread=f'<span class="badge">{escaped(localize(unread))}</span>' if unread else "0",
            )
        )
    return mark_safe("".join(written))  # noqa: S308 (every value escaped)


@allows_upload("MESSAGE_ATTACHMENTS_MAX_BYTES")
@access.role_required(User.Role.CLINICIAN)
@idempotent
def team_new_conversation(request, patient_pk):
    """A clinician starts a conversation with a patient of one of their teams."""
    patient = access.get_cared_patient(request.user, patient_pk)
    teams = access.teams_of(request.user).filter(pk__in=access.teams_patient_can_write_to(patient))
    return _new_conversation(request, patient=patient, teams=teams)


# What a thread shows of each message: read as values (no model instances), the author's
# and team's names joined, and whether it has attachments (an index probe per message), so a
# thread without files reads its messages in one query.
THREAD_FIELDS = ("pk", "author_id", "author_team_id", "body", "created_at", "author__first_name",
                 "author__last_name", "author_team__name")  # fmt: skip


def _thread(conversation_id):
    has_files = Exists(Attachment.objects.filter(message=OuterRef("pk")))
    messages_ = Message.objects.filter(conversation=conversation_id).annotate(has_files=has_files)
    return messages_.values(*THREAD_FIELDS, "has_files").order_by("pk")


# A thread's queries, asked at every read of a conversation and every poll of its page:
# prepared (portal.prepared).
@prepared
def _newest_messages(conversation_id, *, size):
    return _thread(conversation_id).order_by("-pk")[:size]


@prepared
def _newest_messages_before(conversation_id, before, *, size):
    return _thread(conversation_id).filter(pk__lt=before).order_by("-pk")[:size]


@prepared
def _messages_after(conversation_id, after):
    return _thread(conversation_id).filter(pk__gt=after)


# The head of a message in messaging/thread_items.html (its attachments, rare, follow in the
# template), written in Python with each value escaped as the template escapes it
# (portal.rows.escaped): as a template it was a dozen variables and conditions a message.
MESSAGE_HEAD = """<li class="{bubble_class}" id="message-{pk}">
  <p class="message-meta">
    <strong>{author}{for_patient}{team}</strong>
    <time datetime="{created_iso}">{created_label}</time>
  </p>
  <div class="message-body">{body}</div>"""


def _dressed(user, conversation, messages) -> list[dict]:
    """The messages of ``conversation`` (rows of ``_thread``) as ``user`` reads them for
    messaging/thread_items.html: each one's ``head`` (its side, the reader's on the right;
    its author, "You" for the reader's own, and for whom a representative wrote; its team;
    its dates and body) and attachments, worked out once per page (see ``portal.rows``)."""
    messages = list(messages)
    reader_is_team, reader_id = user.is_clinician, user.pk
    patient_user_id = conversation.patient.user_id
    when, iso = rows.date_formatter("SHORT_DATETIME_FORMAT", as_html=True), rows.date_formatter("c", as_html=True)
    escaped = rows.escaped
    you = escaped(_("You"))
    # A representative's message, for the patient (a {% blocktranslate %} in the template).
    for_patient = _(", for %(patient)s") % {"patient": escaped(conversation.patient.full_name)}
    files = _attachments_of([message["pk"] for message in messages if message["has_files"]])
    for message in messages:
        by_team = message["author_team_id"] is not None
        # The reader's side (the patient's, or the care team's) on the right.
        mine = " is-mine" if by_team == reader_is_team else ""
        if message["author_id"] == reader_id:
            author = you
        else:  # User.get_full_name, of the fields read
            author = escaped(f"{message['author__first_name']} {message['author__last_name']}".strip())
        message["head"] = mark_safe(  # noqa: S308 (every value escaped)
            MESSAGE_HEAD.format(
                bubble_class=f"message-bubble {'from-team' if by_team else 'from-patient'}{mine}",
                pk=int(message["pk"]),
                author=author,
                for_patient=for_patient if not by_team and message["author_id"] != patient_user_id else "",
                team=f" — {escaped(message['author_team__name'])}" if message["author_team_id"] else "",
                created_iso=iso(message["created_at"]),
                created_label=when(message["created_at"]),
                body=rows.paragraphs(message["body"]),  # |linebreaks
            )
        )
        message["files"] = files.get(message["pk"], ())
    return messages


def _attachments_of(message_ids) -> dict[int, list[dict]]:
    """The attachments of the messages ``message_ids`` (of a thread the reader may read),
    by message, each with its links and size as the thread shows them; no query for none."""
    if not message_ids:
        return {}
    download, save = rows.url_by_pk("messaging:attachment"), rows.url_by_pk("messaging:save_attachment")
    found = {}
    for attachment in Attachment.objects.filter(message_id__in=message_ids).values(
        "pk", "message_id", "display_name", "size"
    ):
        attachment["url"], attachment["save_url"] = download(attachment["pk"]), save(attachment["pk"])
        attachment["size_label"] = files.human_size(attachment["size"])
        found.setdefault(attachment["message_id"], []).append(attachment)
    return found


# A conversation page shows its latest messages; earlier ones are a link away, a page of
# them at a time (by message id), so a long conversation costs what a short one does.
THREAD_SHOWN = 50


REPLY_FIELDS = "messaging/reply_fields.html"


def _conversation_context(request, conversation, form):
    before = request.GET.get("before", "")
    if before.isdecimal():
        newest = _newest_messages_before(conversation.pk, int(before), size=THREAD_SHOWN + 1)
    else:
        newest = _newest_messages(conversation.pk, size=THREAD_SHOWN + 1)
    thread = _dressed(request.user, conversation, reversed(newest[:THREAD_SHOWN]))
    context = {
        "conversation": conversation,
        "thread": thread,
        "form": form,
        # A new, empty reply's fields written once (portal.widgets.empty_form_html); a
        # draft or a refused reply (a message's words) written anew.
        "reply_fields_html": widgets.empty_form_html(REPLY_FIELDS, ReplyForm)
        if not form.is_bound and not form.initial.get("body")
        else render_to_string(REPLY_FIELDS, {"form": form}),
        "last_id": thread[-1]["pk"] if thread else 0,
        "earlier": thread[0]["pk"] if len(newest) > THREAD_SHOWN else None,
        # An earlier page is not kept up to date (new messages belong after the latest ones).
        "earlier_page": before.isdecimal(),
    }
    if request.user.is_clinician:
        context["assign_form"] = AssignForm(initial={"assignee": conversation.assigned_to_id}, team=conversation.team)
        context["templates"] = ReplyTemplate.objects.filter(team=conversation.team)
        context["shows_prescription"] = conversation.prescription_id is not None
        context["shows_appointment"] = conversation.appointment_id is not None
    else:
        context["can_write"] = conversation.written_to  # access.patient_can_write_to's, read with it
        # What the conversation is about, only to whom may read it in the record: a helper
        # given the messages but not the prescriptions sees no prescription here.
        record, field = access.current_record(request), Conversation._meta.get_field
        context["shows_prescription"] = access.in_record(
            record, field("prescription").related_model, conversation.prescription_id
        )
        context["shows_appointment"] = access.in_record(
            record, field("appointment").related_model, conversation.appointment_id
        )
    return context


@allows_upload("MESSAGE_ATTACHMENTS_MAX_BYTES")
@login_required
@idempotent
def conversation(request, pk):
    """Read a conversation and reply. A reply to a closed conversation reopens it."""
    conversation = access.get_conversation_for(request.user, pk)
    access.check_in_record(request, conversation.patient, access.MESSAGES)
    draft = request.session.pop(DRAFT_SESSION_KEY % conversation.pk, "") if request.method == "GET" else ""
    form = ReplyForm(*_bound(request), initial={"body": draft})
    if request.method == "POST" and request.user.is_clinician and "use_template" in request.POST:
        # A reply template added to the draft (the page's script does it in place; without
        # it, here): the draft typed so far is kept, and nothing is sent.
        template_id = request.POST.get("template", "")
        template = None
        if template_id.isdecimal():
            template = ReplyTemplate.objects.filter(team=conversation.team, pk=int(template_id)).first()
        if template is not None:
            draft = request.POST.get("body", "").rstrip()
            form = ReplyForm(initial={"body": f"{draft}\n\n{template.body}" if draft else template.body})
        else:
            form = ReplyForm(initial={"body": request.POST.get("body", "")})
    elif request.method == "POST" and form.is_valid():
        try:
            services.send_message(
                author=request.user,
                conversation=conversation,
                body=form.cleaned_data["body"],
                attachments=form.cleaned_data["attachments"],
            )
        except ValidationError as error:
            form.add_error(_field_of(error), error)
        else:
            messages.success(request, _("Your message has been sent."))
            return redirect("messaging:conversation", conversation.pk)
    services.mark_read(user=request.user, conversation=conversation)
    return access.render_record(
        request, "messaging/conversation.html", _conversation_context(request, conversation, form),
        patient=conversation.patient, action=AccessLog.Action.READ_CONVERSATION, target=conversation.subject,
        team=_read_through(request.user, conversation),
    )  # fmt: skip


def _read_through(user, conversation):
    """The team a clinician reads a conversation through: its own (the policy lets them
    read it through no other), for the access log; none for the patient's side."""
    return conversation.team if user.is_clinician else None


@require_GET
@login_required
def thread(request, pk):
    """The messages posted after ``?after=<id>``, polled by the conversation page
    every 10 seconds (a background request: not activity). Nothing new is an empty
    answer, which carries nothing of the record and is not logged; new messages
    are appended to the page, announced, marked read and logged as a read."""
    conversation = access.get_conversation_for(request.user, pk)
    access.check_in_record(request, conversation.patient, access.MESSAGES)
    after = request.GET.get("after", "")
    after = int(after) if after.isdecimal() else 0
    new = _dressed(request.user, conversation, _messages_after(conversation.pk, after))
    context = {"conversation": conversation, "thread": new, "last_id": new[-1]["pk"] if new else after}
    if not new:
        return render(request, "messaging/thread_news.html", context)
    services.mark_read(user=request.user, conversation=conversation)
    return access.render_record(
        request, "messaging/thread_news.html", context,
        patient=conversation.patient, action=AccessLog.Action.READ_CONVERSATION, target=conversation.subject,
        team=_read_through(request.user, conversation),
    )  # fmt: skip


@require_POST
@access.role_required(User.Role.CLINICIAN)
@idempotent
def assign(request, pk):
    conversation = access.get_conversation_for(request.user, pk)
    form = AssignForm(request.POST, team=conversation.team)
    if form.is_valid():
        services.assign_conversation(
            actor=request.user, conversation=conversation, assignee=form.cleaned_data["assignee"]
        )
        messages.success(request, _("Assignment saved."))
    else:
        messages.error(request, _("Choose a member of the care team."))
    return _back_to_conversation(request, conversation)


@require_POST
@access.role_required(User.Role.CLINICIAN)
@idempotent
def set_status(request, pk):
    conversation = access.get_conversation_for(request.user, pk)
    try:
        services.set_conversation_status(
            actor=request.user, conversation=conversation, status=request.POST.get("status", "")
        )
    except ValidationError:
        messages.error(request, _("Unknown status."))
    else:
        messages.success(request, _("Conversation updated."))
    return _back_to_conversation(request, conversation)


@access.role_required(User.Role.CLINICIAN)
@idempotent
def reply_templates(request):
    """The reply templates of the clinician's care teams: list and add."""
    teams = access.teams_of(request.user)
    form = ReplyTemplateForm(request.POST if request.method == "POST" else None, teams=teams)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Template saved."))
        return redirect("messaging:reply_templates")
    templates = ReplyTemplate.objects.filter(team__in=teams).select_related("team")
    return render(request, "messaging/reply_templates.html", {"form": form, "templates": templates})


@require_POST
@access.role_required(User.Role.CLINICIAN)
@idempotent
def delete_reply_template(request, pk):
    template = get_object_or_404(ReplyTemplate, pk=pk, team__in=access.teams_of(request.user))
    template.delete()
    messages.success(request, _("Template deleted."))
    return redirect("messaging:reply_templates")


@access.role_required(User.Role.PATIENT)
@idempotent
def preferences(request):
    """Email preferences moved to the account page, with every kind of news."""
    return redirect(reverse("accounts:security") + "#notices-title")


@require_GET
@login_required
def attachment(request, pk):
    """Download an attachment, verified against its hash; never served when altered."""
    attachment = access.get_attachment_for(request.user, pk)
    conversation = attachment.message.conversation
    access.check_in_record(request, conversation.patient, access.MESSAGES)
    try:
        data = services.read_attachment(attachment=attachment)
    except files.IntegrityError:
        messages.error(request, _("This file failed its integrity check: it is not served, to protect you."))
        return redirect("messaging:conversation", conversation.pk)
    return access.send_record_file(
        request, patient=conversation.patient, action=AccessLog.Action.DOWNLOAD_ATTACHMENT,
        target=conversation.subject, data=data, content_type=attachment.content_type,
        filename=attachment.download_name,
    )  # fmt: skip


@require_POST
@access.role_required(User.Role.PATIENT)
@idempotent
def save_attachment(request, pk):
    """Copy an attachment into the patient's documents."""
    attachment = access.get_attachment_for(request.user, pk)
    access.check_in_record(request, attachment.message.conversation.patient, access.MESSAGES)
    access.check_in_record(request, attachment.message.conversation.patient, access.DOCUMENTS)
    own = access.current_record(request).is_own
    try:
        document, saved = services.save_attachment_to_documents(user=request.user, attachment=attachment)
    except (files.IntegrityError, ValidationError):
        messages.error(
            request,
            _("This file could not be saved to your documents.")
            if own
            else _("This file could not be saved to the documents."),
        )
        return redirect("messaging:conversation", attachment.message.conversation_id)
    if saved:
        messages.success(
            request,
            _("The file has been saved to your documents.") if own else _("The file has been saved to the documents."),
        )
    else:
        messages.info(
            request,
            _("This file is already in your documents.") if own else _("This file is already in the documents."),
        )
    return redirect("records:document", document.pk)


@require_POST
@access.role_required(User.Role.CLINICIAN)
@idempotent
def set_confidential(request, pk):
    """The care team keeps a conversation from the patient's representatives (a minor's
    secret care), or lifts it: they no longer see it, nor hear of its messages."""
    conversation = access.get_conversation_for(request.user, pk)
    services.set_conversation_confidential(
        conversation=conversation, confidential=request.POST.get("confidential") == "1"
    )
    messages.success(request, _("Conversation updated."))
    return _back_to_conversation(request, conversation)
