"""The access policy: the one place that decides who may see which patient's data.

Views and querysets call these helpers; no view filters patient data by hand.
A patient that exists but is not yours raises ``Http404``, exactly like one
that does not exist. Support staff get no patient at all.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header

from messaging.models import Attachment, Conversation
from portal.accounts.models import Patient, User
from portal.audit.models import AccessLog
from portal.careteams.models import CareLink, CareTeam, ClinicianBlock
from records.models import Document, Export


def _is_active(user, role) -> bool:
    return user.is_authenticated and user.is_active and user.role == role


def patients_acted_for(user) -> QuerySet[Patient]:
    """Patients whose record ``user`` holds as the patient: their own record."""
    if not _is_active(user, User.Role.PATIENT):
        return Patient.objects.none()
    return Patient.objects.filter(user=user)


def teams_of(user) -> QuerySet[CareTeam]:
    """Care teams ``user`` is an active clinician member of."""
    if not _is_active(user, User.Role.CLINICIAN):
        return CareTeam.objects.none()
    return CareTeam.objects.filter(memberships__user=user)


def _active_links(user):
    return CareLink.objects.filter(status=CareLink.Status.ACTIVE, team__memberships__user=user)


def patients_cared_for(user) -> QuerySet[Patient]:
    """Patients ``user`` cares for: an active (not ended, not blocked) link
    between the patient and one of the user's care teams, unless the patient
    has blocked this clinician."""
    if not _is_active(user, User.Role.CLINICIAN):
        return Patient.objects.none()
    return Patient.objects.filter(Exists(_active_links(user).filter(patient=OuterRef("pk")))).exclude(
        Exists(ClinicianBlock.objects.filter(patient=OuterRef("pk"), clinician=user))
    )


def get_own_patient(user) -> Patient:
    """The record a patient user acts for, or 404 for anyone else."""
    patient = patients_acted_for(user).first()
    if patient is None:
        raise Http404
    return patient


def get_cared_patient(user, pk) -> Patient:
    """A patient ``user`` cares for, by primary key; 404 for unknown and not-yours alike."""
    try:
        return patients_cared_for(user).get(pk=pk)
    except (Patient.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def team_caring_for(user, patient) -> CareTeam | None:
    """The clinician's care team through which they care for ``patient`` (an active
    link): the team a publication or a read is made in the name of."""
    return CareTeam.objects.filter(Exists(_active_links(user).filter(team=OuterRef("pk"), patient=patient))).first()


def get_own_access_log(user, pk) -> AccessLog:
    """A line of the signed-in patient's own access history (a record merged into
    theirs included); 404 for a line of anyone else's, for an unknown one, and for
    anyone who is not a patient."""
    acted_for = patients_acted_for(user)
    try:
        return AccessLog.objects.get(Q(patient__in=acted_for) | Q(patient__merged_into__in=acted_for), pk=pk)
    except (AccessLog.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def trace_read(user, patient, action, target="", team=None) -> AccessLog | None:
    """Write one access-log row for a read of ``patient``'s data by someone other
    than the patient. The patient's own reads are not logged. ``team``: the team a
    care team's software reads for (else found from the reader's memberships)."""
    if patient.user_id is not None and patient.user_id == user.pk:
        return None
    if team is None:
        team = team_caring_for(user, patient)
    return AccessLog.objects.create(
        patient=patient, actor=user, actor_role=user.role, team=team, action=action, target=target[:255]
    )


def trace_listed_conversations(user, conversations) -> None:
    """For a care team's inbox: one access-log row per conversation shown (its
    subject is a message's content), in one insert."""
    AccessLog.objects.bulk_create(
        AccessLog(
            patient_id=conversation.patient_id,
            actor=user,
            actor_role=user.role,
            team_id=conversation.team_id,
            action=AccessLog.Action.LIST_CONVERSATIONS,
            target=conversation.subject[:255],
        )
        for conversation in conversations
    )


# --- Answering with a patient's data: the only two ways, both logged ----------------------


def render_record(request, template, context, *, patient, action, target="", status=200) -> HttpResponse:
    """A page carrying any part of ``patient``'s record (or identity) to the person
    who asked. A read by anyone but the patient is written to the access log
    before the page is sent."""
    trace_read(request.user, patient, action, target)
    return render(request, template, context, status=status)


def send_record_file(request, *, patient, action, target, data, content_type, filename=None) -> HttpResponse:
    """A file of ``patient``'s record (a document, its preview, a message
    attachment): logged as ``render_record`` is; downloaded under ``filename``, or
    shown inline when there is none; never sniffed, never cached."""
    trace_read(request.user, patient, action, target)
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = (
        content_disposition_header(as_attachment=True, filename=filename) if filename else "inline"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store, private"
    return response


def conversations_for(user) -> QuerySet[Conversation]:
    """Conversations ``user`` may read: a patient's own; for a clinician, those of
    their care teams with patients they care for through that very team."""
    if _is_active(user, User.Role.PATIENT):
        return Conversation.objects.filter(patient__in=patients_acted_for(user))
    if _is_active(user, User.Role.CLINICIAN):
        same_team_link = _active_links(user).filter(patient=OuterRef("patient"), team=OuterRef("team"))
        return Conversation.objects.filter(Exists(same_team_link), patient__in=patients_cared_for(user))
    return Conversation.objects.none()


def get_conversation_for(user, pk) -> Conversation:
    """A conversation ``user`` may read; 404 for unknown and not-yours alike."""
    try:
        return conversations_for(user).select_related("patient", "team", "assigned_to", "prescription").get(pk=pk)
    except (Conversation.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def get_attachment_for(user, pk) -> Attachment:
    """An attachment of a conversation ``user`` may read; 404 otherwise."""
    try:
        return Attachment.objects.select_related(
            "message__conversation__patient", "message__author", "message__author_team"
        ).get(pk=pk, message__conversation__in=conversations_for(user))
    except (Attachment.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def patients_linked_to(team) -> QuerySet[Patient]:
    """Patients with an active link to ``team``: the records a team's software
    (a FHIR API client) may publish into and read its own documents from."""
    return Patient.objects.filter(care_links__team=team, care_links__status=CareLink.Status.ACTIVE)


def documents_published_by(team) -> QuerySet[Document]:
    """What a team's software may read back: the documents its team published, for
    patients still actively linked to it (a blocked or ended link shows nothing;
    a document the patient hid stays visible to the team that published it)."""
    return Document.objects.filter(author_team=team, patient__in=patients_linked_to(team))


def teams_patient_can_write_to(patient) -> QuerySet[CareTeam]:
    """The care teams a patient may start a conversation with: active links only."""
    return CareTeam.objects.filter(care_links__patient=patient, care_links__status=CareLink.Status.ACTIVE)


def documents_visible_to(user) -> QuerySet[Document]:
    """Documents ``user`` may see: all of a patient's own; for a clinician, those
    of patients they care for, except documents the patient hid from
    professionals. A hidden document stays visible to the care team that
    published it, and only while that very team's link with the patient is
    active: being in the publishing team is not enough when the patient has
    ended or blocked that team, even if another of the clinician's teams still
    gives access to the record."""
    if _is_active(user, User.Role.PATIENT):
        return Document.objects.filter(patient__in=patients_acted_for(user))
    if _is_active(user, User.Role.CLINICIAN):
        publisher_still_active = _active_links(user).filter(patient=OuterRef("patient"), team=OuterRef("author_team"))
        return Document.objects.filter(patient__in=patients_cared_for(user)).filter(
            Q(hidden=False) | Q(Exists(publisher_still_active))
        )
    return Document.objects.none()


def get_document_for(user, pk) -> Document:
    """A document ``user`` may see; 404 for unknown, hidden and not-yours alike."""
    try:
        return documents_visible_to(user).select_related("patient", "author", "author_team").get(pk=pk)
    except (Document.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def items_visible_to(user, model) -> QuerySet:
    """Rows of a record model (prescriptions, lab reports, observations, profile
    entries) ``user`` may see: a patient's own; a clinician's cared-for patients'."""
    if _is_active(user, User.Role.PATIENT):
        return model.objects.filter(patient__in=patients_acted_for(user))
    if _is_active(user, User.Role.CLINICIAN):
        return model.objects.filter(patient__in=patients_cared_for(user))
    return model.objects.none()


def get_item_for(user, model, pk):
    """One row of ``model`` ``user`` may see; 404 for unknown and not-yours alike."""
    try:
        return items_visible_to(user, model).select_related("patient").get(pk=pk)
    except (model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


# The field naming the care team that published an item of each correctable kind.
PUBLISHING_TEAM = {"Document": "author_team", "Observation": "report__team"}


def items_correctable_by(user, model) -> QuerySet:
    """Rows of ``model`` (documents, prescriptions, lab values, profile entries)
    ``user`` may correct: those their own care team published, of patients they care
    for through that very team (an active link). Another team's item, an ended or
    blocked link, a patient's own entry: nothing."""
    team = PUBLISHING_TEAM.get(model.__name__, "team")
    rows = documents_visible_to(user) if model is Document else items_visible_to(user, model)
    same_team_link = _active_links(user).filter(patient=OuterRef("patient"), team=OuterRef(team))
    return rows.filter(Exists(same_team_link))


def get_correctable_for(user, model, pk):
    """One row ``user`` may correct (see ``items_correctable_by``); 404 otherwise,
    also for an item they may only read."""
    try:
        return items_correctable_by(user, model).select_related("patient").get(pk=pk)
    except (model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def exports_for(user) -> QuerySet[Export]:
    """Exports ``user`` may see and download: only a patient's own, never anyone else's."""
    if not _is_active(user, User.Role.PATIENT):
        return Export.objects.none()
    return Export.objects.filter(patient__in=patients_acted_for(user), requested_by=user)


def get_export_for(user, pk) -> Export:
    """An export ``user`` may download; 404 for unknown and not-yours alike."""
    try:
        return exports_for(user).get(pk=pk)
    except (Export.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def role_required(role):
    """View decorator: sign-in required; any other role gets 404, as for not-yours."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not _is_active(request.user, role):
                raise Http404
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def get_team_for(user, pk) -> CareTeam:
    """One of the care teams ``user`` is a clinician member of; 404 for any other."""
    try:
        return teams_of(user).get(pk=pk)
    except (CareTeam.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def links_managed_by(user) -> QuerySet[CareLink]:
    """The active links of ``user``'s care teams to patients ``user`` cares for: the
    links they may end. An ended or blocked link, or a patient who blocked ``user``,
    gives nothing."""
    return CareLink.objects.filter(
        status=CareLink.Status.ACTIVE, team__in=teams_of(user), patient__in=patients_cared_for(user)
    )


def get_managed_link(user, pk) -> CareLink:
    """A link ``user`` may end (see ``links_managed_by``); 404 otherwise."""
    try:
        return links_managed_by(user).select_related("patient", "team").get(pk=pk)
    except (CareLink.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
