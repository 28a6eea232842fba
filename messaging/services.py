"""Messaging workflows. Views call these; access is checked by the caller through
``portal.access`` before anything here runs."""

import datetime
import logging
import re
import unicodedata
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import ngettext

from messaging.models import (
    Attachment,
    Conversation,
    Event,
    Message,
    Notification,
    ReadState,
)
from portal import access
from portal.accounts.models import User
from portal.mail import send_bilingual
from portal.prepared import prepared
from records import files

logger = logging.getLogger(__name__)

# Every notification email, in French then English (``portal.mail.send_bilingual``): what
# happened and the page to open. No health content, ever: not the subject, not the team,
# not the sender, not the patient, not the reason.
NOTICES = {
    Notification.Kind.MESSAGE: (
        _lazy("New message on Carnet"),
        _lazy("You have a new message on Carnet. Sign in to read it:"),
    ),
    # What a patient did that their care team owns, told to the team's members.
    Notification.Kind.APPOINTMENT_CANCELLED: (
        _lazy("A patient cancelled an appointment – open Carnet"),
        _lazy(
            "A patient cancelled an appointment with your care team in Carnet. Sign in to see it on your team's agenda:"
        ),
    ),
    Notification.Kind.PROFILE_COMMENT: (
        _lazy("A patient commented on their medical profile – open Carnet"),
        _lazy(
            "A patient commented on an entry your care team wrote in their medical profile. "
            "Sign in to Carnet to read it on the patient's page:"
        ),
    ),
}


def notify_team(*, team, patient, actor: User, appointment=None, profile_comment=None) -> list[Notification]:
    """In the caller's transaction: tell ``team``'s members who care for ``patient``
    (``portal.access.team_members_told``; never ``actor``) that the patient, or someone
    acting for them, cancelled ``appointment`` or wrote ``profile_comment``. One outbox
    row per member and item (a second call for the same item adds nothing), emailed
    after commit."""
    from portal import access

    kind = Notification.Kind.APPOINTMENT_CANCELLED if appointment is not None else Notification.Kind.PROFILE_COMMENT
    item = {"appointment": appointment} if appointment is not None else {"profile_comment": profile_comment}
    told = Notification.objects.filter(**item).values("recipient")
    rows = Notification.objects.bulk_create(
        [
            Notification(kind=kind, recipient=user, **item)
            for user in access.team_members_told(team, patient).exclude(pk__in=told)
            if user != actor
        ]
    )
    if rows:
        transaction.on_commit(partial(enqueue_notifications, [row.pk for row in rows]))
    return rows


def _notice_url(notification: Notification) -> str:
    """The page a notification email sends its reader to (never naming the item)."""
    if notification.kind == Notification.Kind.MESSAGE:
        path = reverse("messaging:team_inbox" if notification.recipient.is_clinician else "messaging:inbox")
    elif notification.kind == Notification.Kind.APPOINTMENT_CANCELLED:
        appointment = notification.appointment
        day = timezone.localtime(appointment.starts_at).date().isoformat()
        path = f"{reverse('agenda:team_day')}?team={appointment.team_id}&day={day}"
    else:
        path = reverse("careteams:patient_detail", args=[notification.profile_comment.patient_id])
    return f"{settings.SITE_URL}{path}"


def recipients_of(message: Message) -> list[User]:
    """Who is told about ``message``: the patient, and those who act for them on messages
    (never for a conversation kept confidential from them), when the care team writes;
    the assigned clinician (else every clinician of the team) when the patient or their
    representative writes: only those who may read it (an active link through that
    team, not blocked by the patient), as ``access.team_members_told`` says."""
    conversation = message.conversation
    if message.author.is_clinician:
        user = conversation.patient.user
        told = [user] if user is not None and user.is_active else []
        return told + list(_representatives(conversation))
    from portal import access

    members = access.team_members_told(conversation.team, conversation.patient)
    if conversation.assigned_to_id:
        assigned = list(members.filter(pk=conversation.assigned_to_id))
        if assigned:
            return assigned
    return list(members)


def start_conversation(
    *,
    author: User,
    patient,
    team,
    subject: str,
    kind: str,
    body: str,
    prescription=None,
    appointment=None,
    attachments=(),
    confidential=False,
) -> Conversation:
    """Open a conversation between ``patient`` and ``team`` with its first message
    (about a prescription for a renewal, an appointment for a reschedule request);
    ``confidential`` (a care team's choice) keeps it from the representatives from the
    first message on. A conversation about a confidential prescription or appointment is
    confidential too, whoever opens it: its subject and messages say what was kept from them
    (a minor asking to renew her pill, or to move a visit)."""
    about_secret = any(item is not None and item.confidential for item in (prescription, appointment))
    confidential = confidential or about_secret
    if confidential and author.role == User.Role.CLINICIAN and patient.user_id is None:
        # Kept from the representatives, and the person has no login: nobody would read it.
        raise ValidationError(
            _(
                "Nobody could read this conversation: %(name)s has no login of their own, and a confidential "
                "conversation is kept from the representatives."
            )
            % {"name": patient.full_name},
            code="nobody_reads",
        )
    with transaction.atomic():
        conversation = Conversation.objects.create(
            patient=patient,
            team=team,
            subject=subject,
            kind=kind,
            started_by=author,
            prescription=prescription,
            appointment=appointment,
            confidential=confidential,
        )
        send_message(author=author, conversation=conversation, body=body, attachments=attachments)
    return conversation


def send_message(*, author: User, conversation: Conversation, body: str, attachments=()) -> Message:
    """Add a message, with its attachments; a reply to a closed conversation reopens
    it. The outbox rows for the notifications are written in the same transaction
    and relayed after commit. Files are checked, sealed and stored one at a time (one
    file's bytes in memory at once), and removed again when anything fails: nothing
    is half-saved."""
    body = body.strip()
    if not body:
        raise ValidationError(_("Write a message."), code="empty")
    if author.role == User.Role.PATIENT and not access.patient_can_write_to(conversation.patient, conversation.team_id):
        # Every way a patient-side person writes to a team (a new conversation, a reply, a
        # renewal or a change request) ends here: none reaches a team nobody can read it at.
        raise ValidationError(
            _(
                "Nobody at this care team can read your messages now: its link is not active, or its "
                "professionals are blocked (see the care teams page)."
            ),
            code="nobody_reads",
        )
    check_attachments(attachments)
    stored = []
    try:
        return _send(author, conversation, body, attachments, stored)
    except Exception:
        for name in stored:
            files.remove(name)
        raise


def check_attachments(uploads) -> None:
    """The limits of one message's files, from their sizes alone (nothing is read):
    ``MESSAGE_ATTACHMENTS_MAX_COUNT`` files, ``MESSAGE_ATTACHMENTS_MAX_BYTES`` in all."""
    most, total = settings.MESSAGE_ATTACHMENTS_MAX_COUNT, settings.MESSAGE_ATTACHMENTS_MAX_BYTES
    if len(uploads) > most:
        raise ValidationError(
            ngettext(
                "Attach %(most)d file at most to a message (%(count)d chosen).",
                "Attach %(most)d files at most to a message (%(count)d chosen).",
                most,
            )
            % {"most": most, "count": len(uploads)},
            code="too_many",
        )
    size = sum(upload.size for upload in uploads)
    if size > total:
        raise ValidationError(
            _("These files come to %(size)s; a message takes %(total)s at most. Send some in another message.")
            % {"size": files.human_size(size), "total": files.human_size(total)},
            code="too_large",
        )


DISPLAY_NAME_LENGTH = 100


def safe_display_name(original_name: str) -> str:
    """The sender's file name as display text only (downloads are named from the
    content): no path, no control or invisible formatting characters (right-to-left
    overrides), at most 100 characters, shortened in the middle so the end stays."""
    name = re.split(r"[/\\]", original_name or "")[-1]
    name = "".join(
        " " if char.isspace() else char for char in name if char.isspace() or unicodedata.category(char)[0] not in "CZ"
    )
    name = " ".join(name.split()).strip(" .")
    if not name:
        return "piece-jointe"
    if len(name) <= DISPLAY_NAME_LENGTH:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 10:
        stem, extension = name, ""
    ending = f".{extension}" if extension else ""
    room = DISPLAY_NAME_LENGTH - len(ending) - 1  # one character for the ellipsis
    head, tail = room - room // 2, room // 2
    return f"{stem[:head]}…{stem[len(stem) - tail :]}{ending}"


def _send(author, conversation, body, uploads, stored) -> Message:
    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        message = Message.objects.create(
            conversation=conversation,
            author=author,
            author_team=conversation.team if author.is_clinician else None,
            body=body,
            created_at=now,
        )
        fields = ["last_message_at"]
        conversation.last_message_at = now
        if conversation.status == Conversation.Status.CLOSED:
            conversation.status = Conversation.Status.OPEN
            fields.append("status")
            Event.objects.create(conversation=conversation, actor=author, kind=Event.Kind.REOPENED, at=now)
        conversation.save(update_fields=fields)
        Event.objects.create(conversation=conversation, actor=author, kind=Event.Kind.SENT, at=now)
        _count_unread(conversation, author=author, now=now)
        for upload in uploads:
            data, content_type = files.read_upload(upload)
            name, sha256, key_id = files.store(data, folder="attachments")
            stored.append(name)
            Attachment.objects.create(
                message=message,
                display_name=safe_display_name(upload.name),
                content_type=content_type,
                size=len(data),
                sha256=sha256,
                key_id=key_id,
                file_name=name,
            )
            del data  # the next file is read only now
        notifications = Notification.objects.bulk_create(
            [Notification(message=message, recipient=user) for user in recipients_of(message) if user != author]
        )
        ids = [notification.pk for notification in notifications]
        if ids:
            transaction.on_commit(partial(enqueue_notifications, ids))
    return message


def _representatives(conversation: Conversation):
    from portal import access

    return access.representatives_told(conversation.patient, access.MESSAGES, confidential=conversation.confidential)


def readers_of(conversation: Conversation) -> set[int]:
    """The users who read ``conversation``: the patient's login, those who act for them
    on messages, and the team's clinicians."""
    readers = set(conversation.team.members.filter(role=User.Role.CLINICIAN).values_list("pk", flat=True))
    if conversation.patient.user_id is not None:
        readers.add(conversation.patient.user_id)
    readers |= set(_representatives(conversation).values_list("pk", flat=True))
    return readers


def _count_unread(conversation, *, author, now) -> None:
    """Under the conversation's lock: one more unread message for every reader but
    the author, whose marker moves to now. Two statements, whatever the history."""
    others = readers_of(conversation) - {author.pk}
    states = ReadState.objects.filter(conversation=conversation, user_id__in=others)
    known = set(states.values_list("user_id", flat=True))
    states.update(unread=F("unread") + 1)
    ReadState.objects.bulk_create(
        [ReadState(conversation=conversation, user_id=user_id, unread=1) for user_id in others - known],
        ignore_conflicts=True,  # a reader opening it right now made their own marker: nothing to add
    )
    ReadState.objects.update_or_create(
        conversation=conversation, user=author, defaults={"last_read_at": now, "unread": 0}
    )


def enqueue_notifications(ids) -> int:
    """Hand notifications to Celery; returns how many were. When the broker is
    unreachable they stay pending in the outbox for the periodic relay."""
    from messaging.tasks import deliver_notification
    from portal import jobs

    for count, notification_id in enumerate(ids):
        try:
            jobs.send(deliver_notification, notification_id)
        except Exception:  # any broker failure: the outbox row is the safety net
            logger.warning("broker unreachable; %d notification(s) left for the relay", len(ids) - count)
            return count
    return len(ids)


@prepared  # asked at every read of a conversation
def _read_to_the_end(conversation_id, user_id):
    read = {"conversation_id": conversation_id, "user_id": user_id, "unread": 0, "last_read_at__isnull": False}
    return ReadState.objects.filter(**read).values_list("pk", flat=True)[:1]


def mark_read(*, user: User, conversation: Conversation) -> bool:
    """Record that ``user`` has read everything in ``conversation`` so far.
    Returns True (and traces it) when there was something new to read."""
    # Read before, and nothing since: nothing to write (one cheap probe of the marker).
    if _read_to_the_end(conversation.pk, user.pk):
        return False
    now = timezone.now()
    ReadState.objects.update_or_create(
        conversation=conversation, user=user, defaults={"last_read_at": now, "unread": 0}
    )
    Event.objects.create(conversation=conversation, actor=user, kind=Event.Kind.READ, at=now)
    return True


def assign_conversation(*, actor: User, conversation: Conversation, assignee: User | None) -> None:
    """Give the conversation to a member of its team (or to nobody)."""
    if assignee is not None and not conversation.team.members.filter(pk=assignee.pk, is_active=True).exists():
        raise ValidationError(_("Choose a member of the care team."), code="not_member")
    if conversation.assigned_to_id == (assignee.pk if assignee else None):
        return
    conversation.assigned_to = assignee
    conversation.save(update_fields=["assigned_to"])
    Event.objects.create(conversation=conversation, actor=actor, kind=Event.Kind.ASSIGNED, subject_user=assignee)


def set_conversation_status(*, actor: User, conversation: Conversation, status: str) -> None:
    """Close or reopen a conversation; nothing happens when it already has that status."""
    if status not in Conversation.Status.values:
        raise ValidationError(_("Unknown status."), code="status")
    if conversation.status == status:
        return
    conversation.status = status
    conversation.save(update_fields=["status"])
    kind = Event.Kind.CLOSED if status == Conversation.Status.CLOSED else Event.Kind.REOPENED
    Event.objects.create(conversation=conversation, actor=actor, kind=kind)


def keep_conversations_about(*, prescription=None, appointment=None) -> int:
    """An item made confidential after the fact: the conversations about it (a renewal
    request, a request to move it) become confidential too; lifting the item's
    confidentiality leaves them so (the team lifts each one, knowing what it says)."""
    about = {"prescription": prescription} if prescription is not None else {"appointment": appointment}
    return Conversation.objects.filter(**about, confidential=False).update(confidential=True)


def set_conversation_confidential(*, conversation: Conversation, confidential: bool) -> None:
    """Keep ``conversation`` from the patient's representatives, or lift it."""
    if conversation.confidential != confidential:
        conversation.confidential = confidential
        conversation.save(update_fields=["confidential"])


def conversations_unread_by(*, user: User):
    """The conversations ``user`` may read (``portal.access``) with messages from others
    since they last read them: from their kept markers, whatever the history's size."""
    from portal import access

    unread = ReadState.objects.filter(user=user, unread__gt=0)
    return access.conversations_for(user).filter(pk__in=unread.values("conversation"))


def email_enabled(user: User) -> bool:
    """Whether ``user`` wants new-message emails (their preferences on the account page)."""
    from portal.accounts.services import wants_notice

    return wants_notice(user=user, kind="messages", channel="email")


def deliver_notification(*, notification_id: int) -> bool:
    """Send one notification email (a new message, or a team notice), exactly once: the
    row is locked, and only a pending row is sent. Returns True when an email went out."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("recipient", "appointment", "profile_comment")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None or notification.status != Notification.Status.PENDING:
            return False
        notification.attempts += 1
        recipient = notification.recipient
        if not recipient.is_active or (recipient.is_patient and not email_enabled(recipient)):
            notification.status = Notification.Status.SKIPPED
            notification.save(update_fields=["status", "attempts"])
            return False
        subject, text = NOTICES[notification.kind]
        context = {"text": text, "url": _notice_url(notification)}
        send_bilingual(recipient.email, subject, "messaging/email/notice.txt", context)
        notification.status = Notification.Status.SENT
        notification.sent_at = timezone.now()
        notification.save(update_fields=["status", "sent_at", "attempts"])
        return True


def relay_pending_notifications(*, older_than_seconds: int = 30) -> int:
    """Enqueue the notifications still pending (the broker was down when their
    message was sent). Returns how many were handed to Celery."""
    cutoff = timezone.now() - datetime.timedelta(seconds=older_than_seconds)
    ids = list(
        Notification.objects.filter(status=Notification.Status.PENDING, created_at__lte=cutoff).values_list(
            "pk", flat=True
        )[:500]
    )
    return enqueue_notifications(ids)


def read_attachment(*, attachment: Attachment) -> bytes:
    """The attachment's bytes, verified; raises ``files.IntegrityError`` when altered."""
    try:
        return files.load(attachment.file_name, attachment.sha256)
    except files.IntegrityError as error:
        logger.error("attachment %s failed its integrity check: %s", attachment.pk, error)
        raise


def save_attachment_to_documents(*, user: User, attachment: Attachment):
    """Copy an attachment into the patient's documents (sealed anew), once: when the
    record already holds a document of the same content, that one, with False."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from records import services as records

    message = attachment.message
    existing = records.document_with_content(patient=message.conversation.patient, sha256=attachment.sha256)
    if existing is not None:
        return existing, False
    data = read_attachment(attachment=attachment)
    return records.upload_document(
        author=message.author,
        patient=message.conversation.patient,
        upload=SimpleUploadedFile(attachment.display_name, data),
        title=attachment.display_name,
        category="other",
        care_date=timezone.localtime(message.created_at).date(),
        team=message.author_team,
    ), True
