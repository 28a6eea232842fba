"""The access policy: the one place that decides who may see which patient's data.

Views and querysets call these helpers; no view filters patient data by hand.
A patient that exists but is not yours raises ``Http404``, exactly like one
that does not exist. Support staff get no patient at all.
"""

from dataclasses import dataclass
from functools import wraps
from typing import NamedTuple

from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header

from agenda.models import Appointment, CalendarFeed
from messaging.models import Attachment, Conversation
from portal.accounts.models import Patient, Representation, User
from portal.audit.models import AccessLog
from portal.careteams.models import CareLink, CareTeam, ClinicianBlock, Membership
from portal.keyed_rows import KeyedRow
from portal.pagination import Rows
from portal.prepared import prepared
from records.models import Document, Export


def _is_active(user, role) -> bool:
    return user.is_authenticated and user.is_active and user.role == role


# --- Records acted for: one's own, and those one represents -------------------------------

# The parts of a record a view serves. A trusted helper is given some of the first four;
# a parent or a legal representative acts for all but "history" (the record's access
# history stays its holder's, as do their own choices about it); the holder for all.
DOCUMENTS, RESULTS, PRESCRIPTIONS, MESSAGES = Representation.PARTS
PROFILE, MANAGE, HISTORY = "profile", "manage", "history"
OWN_PARTS = frozenset({*Representation.PARTS, PROFILE, MANAGE, HISTORY})
FULL_PARTS = OWN_PARTS - {HISTORY}

# Which part each record model belongs to, and its confidentiality flag (the field that,
# when true, keeps the row from representatives); for an event of the record's history,
# the flags of the items it may be about (any of them true keeps it from them).
MODEL_PART = {
    "Document": (DOCUMENTS, "confidential"),
    "Prescription": (PRESCRIPTIONS, "confidential"),
    "LabReport": (RESULTS, "confidential"),
    "Observation": (RESULTS, "report__confidential"),
    "Conversation": (MESSAGES, "confidential"),
    "Allergy": (PROFILE, "confidential"),
    "Condition": (PROFILE, "confidential"),
    "Vaccination": (PROFILE, "confidential"),
    "Measurement": (PROFILE, "confidential"),
    "RecordEvent": (
        MANAGE,
        (
            "prescription__confidential",
            "document__confidential",
            "observation__report__confidential",
            "allergy__confidential",
            "condition__confidential",
            "vaccination__confidential",
            "measurement__confidential",
        ),
    ),
    "Appointment": (MANAGE, "confidential"),
    "AccessLog": (HISTORY, None),
    "AccessReport": (HISTORY, None),
}

# Rows a record merged into another keeps (append-only history, see accounts.merge):
# its holder still sees them, in the record it was merged into.
KEPT_ON_MERGED = frozenset({"RecordEvent", "AccessLog", "AccessReport"})

SELF = "self"
CURRENT_RECORD_SESSION_KEY = "current_record"


@dataclass(frozen=True)
class Record:
    """The record a patient-side page is about, and what its user may do in it:
    ``kind`` is "self" for one's own record, else the representation's kind."""

    patient: Patient
    kind: str
    parts: frozenset
    representation: Representation | None = None

    @property
    def is_own(self) -> bool:
        return self.kind == SELF

    def may(self, part) -> bool:
        return part in self.parts

    def require(self, part) -> "Record":
        """This record, when its user may act on ``part`` of it; else 404."""
        if part not in self.parts:
            raise Http404
        return self


def representations_of(user, part=None, at=None) -> QuerySet[Representation]:
    """The representations in force through which ``user`` acts for others' records,
    those covering ``part`` only when it is given."""
    if not _is_active(user, User.Role.PATIENT):
        return Representation.objects.none()
    return representations_by(user.pk, part, at)


def representations_by(user_id, part=None, at=None) -> QuerySet[Representation]:
    """``representations_of`` an active patient-side login, by id (at ``at``: now when
    None): a builder for ``portal.prepared``."""
    found = Representation.objects.active(at).filter(representative=user_id)
    # A helper given no part acts for nothing.
    found = found.exclude(kind=Representation.Kind.HELPER, **{name: False for name in Representation.PARTS})
    if part in Representation.PARTS:
        found = found.filter(Q(kind__in=[Representation.Kind.PARENT, Representation.Kind.LEGAL]) | Q(**{part: True}))
    elif part is not None:
        found = found.filter(kind__in=[Representation.Kind.PARENT, Representation.Kind.LEGAL])
        if part == HISTORY:
            found = found.none()
    return found


def patients_acted_for(user, part=None) -> QuerySet[Patient]:
    """Patients whose record ``user`` acts for (on ``part`` of it, when given): their own,
    and those they represent."""
    if not _is_active(user, User.Role.PATIENT):
        return Patient.objects.none()
    return Patient.objects.filter(Q(user=user) | Q(pk__in=representations_of(user, part).values("patient")))


# Read at every patient-side request (the layout's switcher and badge ask): one's own
# record, with whether one represents anyone (most do not: no second query), and one's
# representations (a few rows by an indexed key), by SELECTs written once, see
# portal.keyed_rows. The signed-in user's own record comes with them (accounts.backends).
_OWN_RECORD = KeyedRow(Patient, "user", exists={"represents": (Representation, "representative")})
_REPRESENTATIONS = KeyedRow(Representation, "representative")


def records_of(user, *, read_with_user=False) -> list[Record]:
    """Every record ``user`` acts for, their own first, each with its kind and parts:
    the choices of the record switcher. The representations are ``representations_of``'s,
    told apart in Python by the model's own rules (``is_active``, ``parts``: a helper
    given no part acts for nothing): a representative has a handful of them, read only
    when one represents someone; most people represent no one. One query asks for one's
    own record and whether one represents anyone; ``read_with_user``: the signed-in user's
    answers, read with them at the start of the request (portal.accounts.backends), when
    they were."""
    if not _is_active(user, User.Role.PATIENT):
        return []
    if read_with_user and hasattr(user, "represents"):
        own, represents = getattr(user, "patient", None), user.represents
    else:
        own = _OWN_RECORD.get(user.pk)
        represents = own is None or own.represents
    records = [Record(own, SELF, OWN_PARTS)] if own is not None and own.merged_into_id is None else []
    now = timezone.now()
    represented = []
    if represents:
        represented = [found for found in _REPRESENTATIONS.all(user.pk) if found.is_active(now) and found.parts]
    if represented:
        patients = Patient.all_records.in_bulk([found.patient_id for found in represented])
        for found in represented:
            found.patient = patients[found.patient_id]
    for representation in sorted(represented, key=lambda found: (found.patient.birth_date, found.pk)):
        parts = FULL_PARTS if representation.is_full else representation.parts
        records.append(Record(representation.patient, representation.kind, parts, representation))
    return records


def records_of_request(request) -> list[Record]:
    """``records_of`` the request's user, looked up once per request (the page, the
    switcher and the unread badge all ask), from what was read with the user. A choice
    made by the request itself (``choose_record``, after accepting a representation) asks
    the database again."""
    cached = getattr(request, "_carnet_records", None)
    if cached is None or cached[0] != request.user.pk:
        cached = (request.user.pk, records_of(request.user, read_with_user=True))
        request._carnet_records = cached
    return cached[1]


def current_record(request) -> Record:
    """The record the patient-side pages are about: the one chosen in the switcher (kept
    in the session), checked against the policy at every request; when that choice no
    longer holds (a representation ended or expired), the user's own record, else the
    first they represent. 404 for anyone acting for no record."""
    records = records_of_request(request)
    if not records:
        raise Http404
    chosen = request.session.get(CURRENT_RECORD_SESSION_KEY)
    for record in records:
        if record.patient.pk == chosen:
            return record
    return records[0]


def choose_record(request, pk) -> Record:
    """Switch to the record ``pk`` (from the switcher's form): 404 when ``request.user``
    does not act for it."""
    for record in records_of(request.user):
        if str(record.patient.pk) == str(pk):
            request.session[CURRENT_RECORD_SESSION_KEY] = record.patient.pk
            return record
    raise Http404


def record_for(request, part) -> Record:
    """The current record, when the user may act on ``part`` of it; else 404. What every
    patient-side page asks first."""
    return current_record(request).require(part)


# The duplicates merged into a record, by a SELECT written once (portal.keyed_rows): asked
# first, so that a record with none (nearly all) is read by its patient alone, along the
# (patient, time) index its history pages walk, rather than by a condition on the joined
# patient row that no index serves (the planner then walked every patient's history by
# time, filtering).
_MERGED_INTO = KeyedRow(Patient, "merged_into")


def rows_in_record(record, model) -> QuerySet:
    """The rows of the record model ``model`` in ``record`` (the one a patient-side user
    is in, from ``current_record``, checked at every request): all of one's own record;
    for a representative, those of a part they act on, never a confidential one; 404
    outside their parts. The same rows as the user's ``*_for`` / ``*_visible_to`` set
    narrowed to the record (tests/portal/test_representation_table.py holds them equal), in
    a query that names the record instead of every record the user acts for."""
    return rows_of_shape(record.patient.pk, rows_shape(record, model))


class RowsShape(NamedTuple):
    """What ``rows_in_record`` asks of a model's rows besides the record's id: the model,
    the confidentiality flag(s) to leave out (a representative's), the duplicates merged
    into the record that keep their rows there."""

    model: type
    confidential: str | tuple | None
    merged: tuple


def rows_shape(record, model) -> RowsShape:
    """``rows_in_record``'s check (404 outside the reader's parts) and the shape of its
    query, for a prepared query (``portal.prepared``) built by ``rows_of_shape``."""
    part, confidential = MODEL_PART[model.__name__]
    record.require(part)
    merged = ()
    if record.is_own and model.__name__ in KEPT_ON_MERGED:  # a duplicate merged into it keeps these
        merged = tuple(duplicate.pk for duplicate in _MERGED_INTO.all(record.patient.pk))
    return RowsShape(model, confidential if confidential and not record.is_own else None, merged)


def rows_of_shape(patient_id, shape: RowsShape) -> QuerySet:
    """The rows ``rows_in_record`` means, from the record's id and ``rows_shape``."""
    if shape.merged:
        return shape.model.objects.filter(patient__in=[patient_id, *shape.merged])
    rows = shape.model.objects.filter(patient=patient_id)
    return rows.filter(_not_confidential(shape.confidential)) if shape.confidential else rows


def _not_confidential(flags) -> Q:
    """Rows whose confidentiality flag (MODEL_PART's) is false; for several flags, rows
    none of which is true (an event with no document has no document's flag to hide it)."""
    if isinstance(flags, str):
        return Q(**{flags: False})
    condition = Q()
    for flag in flags:
        condition &= ~Q(**{flag: True})
    return condition


def in_record(record, model, pk) -> bool:
    """Whether the row ``pk`` of ``model`` is one ``record``'s reader may see: in the
    record, in a part they act on, not confidential from them (``rows_in_record``'s
    rule, without its 404 outside their parts)."""
    part, _confidential = MODEL_PART[model.__name__]
    return pk is not None and record.may(part) and rows_in_record(record, model).filter(pk=pk).exists()


def check_in_record(request, patient, part) -> None:
    """For a page about one item found by its id: when a patient-side user reads it, it
    must belong to the record they are in (one record per page), in a part they may act
    on; else 404. Clinicians are checked by the lookups themselves."""
    if request.user.is_patient:
        record = current_record(request)
        if record.patient.pk != patient.pk or not record.may(part):
            # In another record they act for (with that part)? The 404 page offers it.
            request.record_elsewhere = next(
                (other for other in records_of_request(request) if other.patient.pk == patient.pk and other.may(part)),
                None,
            )
            raise Http404


def _patient_rows(user, model_name, at=None) -> Q:
    """For a patient-side user (an active one's id will do): the rows of a record model of
    their own record, and of the records they represent (at ``at``: now when None) with
    the model's part, confidential rows excepted."""
    part, confidential = MODEL_PART[model_name]
    user_id = getattr(user, "pk", user)
    represented = Q(patient__in=representations_by(user_id, part, at).values("patient"))
    if confidential:
        represented &= _not_confidential(confidential)
    return Q(patient__user=user_id) | represented


def representatives_told(patient, part, *, confidential=False) -> QuerySet[User]:
    """The logins to tell (content-free) of news in ``part`` of ``patient``'s record:
    its active representatives covering that part; nobody for a confidential item."""
    if confidential:
        return User.objects.none()
    found = Representation.objects.active().filter(patient=patient)
    full = Q(kind__in=[Representation.Kind.PARENT, Representation.Kind.LEGAL])
    found = found.filter(full | Q(**{part: True}) if part in Representation.PARTS else full)
    return User.objects.filter(is_active=True, pk__in=found.values("representative"))


def representatives_reached(patient_ids, part, *, at=None) -> list[tuple[int, int]]:
    """(patient id, representative's login id) for the representations in force at ``at``
    over ``patient_ids`` that cover ``part`` (a helper's own parts; any other part, such
    as appointments or the profile, only parents and legal representatives), the login
    active: whom a content-free reminder about those records may reach. Two queries per
    batch of records, by patient then by login (indexed; joining the logins made
    PostgreSQL read them all); the caller leaves confidential items out."""
    found = Representation.objects.active(at).filter(patient_id__in=patient_ids)
    full = Q(kind__in=[Representation.Kind.PARENT, Representation.Kind.LEGAL])
    found = found.filter(full | Q(**{part: True}) if part in Representation.PARTS else full)
    pairs = list(found.values_list("patient_id", "representative_id").order_by())
    active = set(
        User.objects.filter(
            pk__in={user_id for _patient, user_id in pairs}, is_active=True, role=User.Role.PATIENT
        ).values_list("pk", flat=True)
    )
    return [(patient_id, user_id) for patient_id, user_id in pairs if user_id in active]


def news_for_representative(user) -> QuerySet:
    """The news of the records ``user`` represents, in the parts they act on, never about
    a confidential item: what their (content-free) digest may mention."""
    from records.models import News

    rows = Q()
    for field, part in (("document", DOCUMENTS), ("lab_report", RESULTS), ("prescription", PRESCRIPTIONS)):
        rows |= Q(
            **{f"{field}__isnull": False, f"{field}__confidential": False},
            patient__in=representations_of(user, part).values("patient"),
        )
    return News.objects.filter(rows)


def get_represented_patient(user, pk) -> Patient:
    """A patient ``user`` currently represents, by primary key; 404 otherwise."""
    try:
        return Patient.objects.get(pk=pk, pk__in=representations_of(user).values("patient"))
    except (Patient.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def teams_of(user) -> QuerySet[CareTeam]:
    """Care teams ``user`` is an active clinician member of."""
    if not _is_active(user, User.Role.CLINICIAN):
        return CareTeam.objects.none()
    return clinicians_teams(user.pk)


def clinicians_teams(user_id) -> QuerySet[CareTeam]:
    """``teams_of`` an active clinician, by id: a builder for ``portal.prepared``."""
    return CareTeam.objects.filter(memberships__user=user_id)


@prepared  # the team inbox's filter and columns, the patient list's heading
def clinicians_teams_named(user_id) -> list[CareTeam]:
    """``teams_of`` an active clinician (checked by the caller, as ``role_required``
    does), with their names, by name."""
    return clinicians_teams(user_id).only("name")


@prepared
def _memberships_of_teams_of(user_id):
    return (
        Membership.objects.filter(team__in=clinicians_teams(user_id))
        .order_by("user__last_name", "user__first_name", "user_id", "team__name", "team_id")
        .values_list("team_id", "team__name", "user_id", "user__first_name", "user__last_name", "user__is_active",
                     "user__role")
    )  # fmt: skip


def teams_and_colleagues(user_id) -> tuple[list[tuple], list[tuple]]:
    """An active clinician's teams, by name, as (id, name), and the other active
    clinicians of those teams, by name, as (id, first name, last name): the team inbox's
    filters, from one prepared query of the teams' memberships (a few dozen rows), in the
    database's order of names (the clinician's own rows are theirs by team name)."""
    teams, colleagues = {}, {}
    for team_id, team_name, member_id, first, last, active, role in _memberships_of_teams_of(user_id):
        if member_id == user_id:
            teams[team_id] = team_name
        elif active and role == User.Role.CLINICIAN:
            colleagues.setdefault(member_id, (member_id, first, last))
    return list(teams.items()), list(colleagues.values())


def _active_links(user):
    """Active links of the teams of ``user`` (a clinician, or their id)."""
    return CareLink.objects.filter(status=CareLink.Status.ACTIVE, team__memberships__user=user)


def patients_cared_for_by(user_id) -> QuerySet[Patient]:
    """``patients_cared_for`` an active clinician, by their id: a builder for
    ``portal.prepared``."""
    return Patient.objects.filter(Exists(_active_links(user_id).filter(patient=OuterRef("pk")))).exclude(
        Exists(ClinicianBlock.objects.filter(patient=OuterRef("pk"), clinician=user_id))
    )


def patients_cared_for(user) -> QuerySet[Patient]:
    """Patients ``user`` cares for: an active (not ended, not blocked) link
    between the patient and one of the user's care teams, unless the patient
    has blocked this clinician."""
    if not _is_active(user, User.Role.CLINICIAN):
        return Patient.objects.none()
    return patients_cared_for_by(user.pk)


@prepared
def _cared_patient(user_id, pk):
    return patients_cared_for_by(user_id).filter(pk=pk)


def get_cared_patient(user, pk) -> Patient:
    """A patient ``user`` cares for, by primary key; 404 for unknown and not-yours alike.
    The instance remembers whom it was checked for (see ``items_of_patient``). Asked at
    every page of a record: its query is prepared (``portal.prepared``)."""
    if not _is_active(user, User.Role.CLINICIAN):
        raise Http404
    try:
        found = _cared_patient(user.pk, pk)
    except (ValueError, TypeError):
        raise Http404 from None
    if not found:
        raise Http404
    patient = found[0]
    patient._cared_for_by = user.pk
    return patient


def team_caring_for(user, patient) -> CareTeam | None:
    """The clinician's care team through which they care for ``patient`` (an active
    link): the team a publication or a read is made in the name of."""
    return CareTeam.objects.filter(Exists(_active_links(user).filter(team=OuterRef("pk"), patient=patient))).first()


def teams_caring_for(user, patient) -> QuerySet[CareTeam]:
    """All the clinician's care teams with an active link to ``patient`` (none when the
    patient blocked the clinician): the teams an appointment may be booked in."""
    if not patients_cared_for(user).filter(pk=patient.pk).exists():
        return CareTeam.objects.none()
    return CareTeam.objects.filter(Exists(_active_links(user).filter(team=OuterRef("pk"), patient=patient)))


def get_own_access_log(user, pk) -> AccessLog:
    """A line of the signed-in patient's own access history (a record merged into
    theirs included); 404 for a line of anyone else's, for an unknown one, and for
    anyone who is not a patient."""
    try:
        return AccessLog.objects.get(Q(patient__user=user) | Q(patient__merged_into__user=user), pk=pk)
    except (AccessLog.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def actor_role(user, patient) -> str:
    """The role an access-log row names: a representative's kind ("parent", "legal",
    "helper") when ``user`` acts for ``patient``; else the user's role."""
    if user.is_patient and patient.user_id != user.pk:
        kind = representations_of(user).filter(patient=patient).values_list("kind", flat=True).first()
        return kind or user.role
    return user.role


def trace_read(user, patient, action, target="", team=None, role=None) -> AccessLog | None:
    """Write one access-log row for a read of ``patient``'s data by someone other
    than the patient. The patient's own reads are not logged. ``team``: the team a
    care team's software reads for (else found from the reader's memberships). A
    representative's read is logged with their kind ("parent", "helper"...) as role,
    so the history says who acted, and for whom."""
    if patient.user_id is not None and patient.user_id == user.pk:
        return None
    role = role or actor_role(user, patient)
    if team is None and user.is_clinician:
        team = team_caring_for(user, patient)
    return AccessLog.objects.create(
        patient=patient, actor=user, actor_role=role, team=team, action=action, target=target[:255]
    )


def trace_listed_people(user, patient_ids, action) -> None:
    """For a list of people (the support console's search): one access-log row per
    patient record whose identity it shows, in one insert."""
    actor_id, role = user.pk, user.role  # read once, not once per row
    AccessLog.objects.append(
        {"patient_id": patient_id, "actor_id": actor_id, "actor_role": role, "action": action}
        for patient_id in dict.fromkeys(patient_ids)
    )


def trace_listed_conversations(user, conversations) -> None:
    """For a care team's inbox: one access-log row per conversation shown (its
    subject is a message's content), in one insert."""
    actor_id, role = user.pk, user.role  # read once, not once per row
    AccessLog.objects.append(
        {
            "patient_id": conversation.patient_id,
            "actor_id": actor_id,
            "actor_role": role,
            "team_id": conversation.team_id,
            "action": AccessLog.Action.LIST_CONVERSATIONS,
            "target": conversation.subject[:255],
        }
        for conversation in conversations
    )


# --- Answering with a patient's data: the only two ways, both logged ----------------------


def render_record(request, template, context, *, patient, action, target="", status=200, team=None) -> HttpResponse:
    """A page carrying any part of ``patient``'s record (or identity) to the person
    who asked. A read by anyone but the patient is written to the access log
    before the page is sent (``team``: the clinician's team it is read through, when the
    page knows it; see ``trace_read``)."""
    trace_read(request.user, patient, action, target, team=team)
    # A page of the record (base.html names the record in the title when it is someone
    # else's; one's own account and help pages are one's own, whatever record one is in).
    return render(request, template, {**context, "in_record": True}, status=status)


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


def _through_the_same_team(user) -> Q:
    """For a clinician: rows (with ``patient`` and ``team``) of a team they are in, whose
    patient that very team cares for (an active link) and has not blocked them. The same
    rows as ``patient__in=patients_cared_for(user)`` with the same-team link, said once
    (the same-team link is already a link to one of their teams; a merged record has no
    links), so the query is cheaper to build and to run."""
    same_team_link = _active_links(user).filter(patient=OuterRef("patient"), team=OuterRef("team"))
    blocked = ClinicianBlock.objects.filter(patient=OuterRef("patient"), clinician=user)
    return Q(Exists(same_team_link)) & ~Q(Exists(blocked))


def conversations_for(user) -> QuerySet[Conversation]:
    """Conversations ``user`` may read: a patient's own; for a clinician, those of
    their care teams with patients they care for through that very team."""
    if _is_active(user, User.Role.PATIENT):
        return Conversation.objects.filter(_patient_rows(user, "Conversation"))
    if _is_active(user, User.Role.CLINICIAN):
        return clinicians_conversations(user.pk)
    return Conversation.objects.none()


def clinicians_conversations(user_id) -> QuerySet[Conversation]:
    """``conversations_for`` an active clinician, by id: a builder for ``portal.prepared``."""
    return Conversation.objects.filter(_through_the_same_team(user_id))


def get_conversation_for(user, pk) -> Conversation:
    """A conversation ``user`` may read; 404 for unknown and not-yours alike. Its patient,
    team and assignee come in the same query (for the patient's side, whether they may
    write to its team: ``written_to``); the prescription or appointment a few
    conversations are about is read when asked for (most have neither)."""
    if _is_active(user, User.Role.PATIENT):
        query, values = _patients_conversation, (user.pk, pk, timezone.now())
    elif _is_active(user, User.Role.CLINICIAN):
        query, values = _clinicians_conversation, (user.pk, pk)
    else:
        raise Http404
    try:
        found = query(*values)
    except (ValueError, TypeError):
        raise Http404 from None
    if not found:
        raise Http404
    return found[0]


# get_conversation_for's, prepared: a conversation is opened more than any other page.
# The patient's side reads, with it, whether they may write to its team
# (``written_to``: ``patient_can_write_to``'s answer, which its page shows).
@prepared
def _patients_conversation(user_id, pk, now):
    rows = Conversation.objects.filter(_patient_rows(user_id, "Conversation", now), pk=pk)
    written_to = Exists(teams_patient_can_write_to(OuterRef("patient")).filter(pk=OuterRef("team")))
    return rows.select_related("patient", "team", "assigned_to").annotate(written_to=written_to)


@prepared
def _clinicians_conversation(user_id, pk):
    return clinicians_conversations(user_id).filter(pk=pk).select_related("patient", "team", "assigned_to")


@prepared
def _upcoming_of_cared_patient(user_id, patient_id, now, *, limit):
    rows = Appointment.objects.filter(_through_the_same_team(user_id), patient=patient_id).upcoming(now)
    return rows.select_related("team").order_by("starts_at", "pk")[:limit]


def upcoming_appointments_of(user, patient, *, limit) -> list[Appointment]:
    """For a care team's page of a record: the first ``limit`` appointments of ``patient``
    not yet over that ``user`` may see (``appointments_visible_to``), soonest first,
    with their teams, by a prepared query."""
    if not _is_active(user, User.Role.CLINICIAN):
        return []
    return _upcoming_of_cared_patient(user.pk, patient.pk, timezone.now(), limit=limit)


def appointments_visible_to(user) -> QuerySet[Appointment]:
    """Appointments ``user`` may see: all of a patient's own; for a clinician, those
    their care teams booked, with patients they care for through that very team
    (an appointment with another team says too much: a psychiatry visit)."""
    if _is_active(user, User.Role.PATIENT):
        # One's own, and those of the records one looks after (parents, legal representatives),
        # never one the care team made confidential from them.
        return Appointment.objects.filter(_patient_rows(user, "Appointment"))
    if _is_active(user, User.Role.CLINICIAN):
        return Appointment.objects.filter(_through_the_same_team(user))
    return Appointment.objects.none()


def get_appointment_for(user, pk) -> Appointment:
    """An appointment ``user`` may see; 404 for unknown and not-yours alike."""
    try:
        return appointments_visible_to(user).select_related("patient", "team").get(pk=pk)
    except (Appointment.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def trace_listed_appointments(user, appointments) -> None:
    """For a team's agenda: one access-log row per appointment shown (a patient's
    name beside a team and a time is health data), in one insert."""
    actor_id, role = user.pk, user.role  # read once, not once per row
    AccessLog.objects.append(
        {
            "patient_id": appointment.patient_id,
            "actor_id": actor_id,
            "actor_role": role,
            "team_id": appointment.team_id,
            "action": AccessLog.Action.LIST_AGENDA,
            "target": f"{appointment.local_start:%d/%m/%Y %H:%M}",
        }
        for appointment in appointments
    )


def get_calendar_feed(token_hash: str) -> CalendarFeed:
    """The calendar feed a secret token opens (by its hash), read with nothing but
    what the feed needs; 404 for any other token, a revoked one included. The token
    is the whole credential: no session, no login."""
    try:
        return CalendarFeed.objects.only("pk", "patient", "show_details", "last_used_at").get(
            token_hash=token_hash, patient__user__is_active=True
        )
    except CalendarFeed.DoesNotExist:
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
    """The care teams a patient may write to (a conversation, a reply, a renewal request):
    an active link, and not every professional of the team blocked by the patient (then
    nobody could read it until they unblock one). A team without professionals yet is
    written to: its conversations wait for those who join it. ``patient``: a patient, an
    id, or ``OuterRef("patient")`` when this is a subquery of a query of rows with one."""
    # The patient's blocks are asked two queries further down (in each team's members).
    blocking = OuterRef(OuterRef(patient)) if isinstance(patient, OuterRef) else patient
    members = Membership.objects.filter(team=OuterRef("pk"), user__is_active=True, user__role=User.Role.CLINICIAN)
    readers = members.exclude(user__in=ClinicianBlock.objects.filter(patient=blocking).values("clinician"))
    return CareTeam.objects.filter(care_links__patient=patient, care_links__status=CareLink.Status.ACTIVE).filter(
        Exists(readers) | ~Exists(members)
    )


def patient_can_write_to(patient, team_id) -> bool:
    """Whether ``team_id`` is one of ``teams_patient_can_write_to(patient)``: someone there
    reads what the patient's side writes to it."""
    return bool(_team_written_to(getattr(patient, "pk", patient), team_id))


@prepared  # asked by a conversation's page
def _team_written_to(patient_id, team_id):
    return teams_patient_can_write_to(patient_id).filter(pk=team_id).values_list("pk", flat=True)[:1]


def documents_visible_to(user) -> QuerySet[Document]:
    """Documents ``user`` may see: all of a patient's own; for a clinician, those
    of patients they care for, except documents the patient hid from
    professionals and documents withdrawn as published in error (perhaps another
    person's). Those stay visible to the care team that published them, and only
    while that very team's link with the patient is active: being in the publishing
    team is not enough when the patient has ended or blocked that team, even if
    another of the clinician's teams still gives access to the record."""
    if _is_active(user, User.Role.PATIENT):
        return Document.objects.filter(_patient_rows(user, "Document"))
    if _is_active(user, User.Role.CLINICIAN):
        publisher_still_active = _active_links(user).filter(patient=OuterRef("patient"), team=OuterRef("author_team"))
        return Document.objects.filter(patient__in=patients_cared_for(user)).filter(
            Q(hidden=False, withdrawn_at__isnull=True) | Q(Exists(publisher_still_active))
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
        return model.objects.filter(_patient_rows(user, model.__name__))
    if _is_active(user, User.Role.CLINICIAN):
        return model.objects.filter(patient__in=patients_cared_for(user))
    return model.objects.none()


def items_of_patient(user, patient, model) -> QuerySet:
    """The rows of ``model`` (documents included) of ``patient`` that ``user`` may see:
    ``items_visible_to`` (``documents_visible_to``) narrowed to the patient. For a
    clinician's page about a patient that ``get_cared_patient`` returned for them in
    this request, the patient's rows themselves (a hidden or withdrawn document only while
    its publishing team's link is active), without building the cared-for subquery again for
    every list of the page (tests/portal/test_access_table.py holds the two equal)."""
    if checked_for(user, patient):
        return cared_patients_rows(patient.pk, user.pk, model=model)
    rows = documents_visible_to(user) if model is Document else items_visible_to(user, model)
    return rows.filter(patient=patient)


def checked_for(user, patient) -> bool:
    """Whether ``patient`` came from ``get_cared_patient`` for ``user`` in this request:
    its rows for ``user`` are then ``cared_patients_rows(patient.pk, user.pk, ...)``, a
    builder of prepared queries."""
    return getattr(patient, "_cared_for_by", None) == user.pk and _is_active(user, User.Role.CLINICIAN)


def cared_patients_rows(patient_id, user_id, *, model, related=()) -> QuerySet:
    """``items_of_patient`` for a patient checked by ``get_cared_patient`` for the
    clinician ``user_id`` in this request (only then), with ``related`` selected: a
    builder for ``portal.prepared``."""
    if model is Document:
        publisher_still_active = _active_links(user_id).filter(patient=patient_id, team=OuterRef("author_team"))
        rows = Document.objects.filter(patient=patient_id).filter(
            Q(hidden=False, withdrawn_at__isnull=True) | Q(Exists(publisher_still_active))
        )
    else:
        rows = model.objects.filter(patient=patient_id)
    return rows.select_related(*related) if related else rows


_cared_patients_items = prepared(cared_patients_rows)


def items_of_patient_rows(user, patient, model, related=()) -> Rows | QuerySet:
    """``items_of_patient`` with ``related`` selected, for ``keyset_page``: on a care team's
    page of a record (the patient checked by ``get_cared_patient``), as ``Rows`` (by
    prepared queries)."""
    if checked_for(user, patient):
        return Rows.of(cared_patients_rows, patient.pk, user.pk, model=model, related=tuple(related))
    return items_of_patient(user, patient, model).select_related(*related)


def list_items_of_patient(user, patient, model, related=()) -> list:
    """``items_of_patient`` with ``related`` selected, as a list; on a care team's page of
    a record (the patient checked by ``get_cared_patient``), by a prepared query."""
    if checked_for(user, patient):
        return _cared_patients_items(patient.pk, user.pk, model=model, related=tuple(related))
    return list(items_of_patient(user, patient, model).select_related(*related))


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


def correctable_teams(user, patient) -> set[int]:
    """The ids of ``user``'s care teams through which they may correct what those teams
    published in ``patient``'s record (an active link, not blocked): the rows of a page
    that get correction and confidentiality controls. Empty for anyone but a clinician."""
    if not _is_active(user, User.Role.CLINICIAN):
        return set()
    return {link.team_id for link in links_of_cared_patient(user, patient) if link.mine}


def get_correctable_for(user, model, pk):
    """One row ``user`` may correct (see ``items_correctable_by``); 404 otherwise,
    also for an item they may only read."""
    try:
        return items_correctable_by(user, model).select_related("patient").get(pk=pk)
    except (model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def exports_for(user) -> QuerySet[Export]:
    """Exports ``user`` may see and download: those they asked for, of their own record
    or of one they fully represent (never a helper's; never another person's export)."""
    if not _is_active(user, User.Role.PATIENT):
        return Export.objects.none()
    represented = Q(patient__in=representations_of(user, MANAGE).values("patient"))
    return Export.objects.filter(Q(patient__user=user) | represented, requested_by=user)


def exports_in_record(user, record) -> QuerySet[Export]:
    """``exports_for(user)`` narrowed to ``record`` (the one they are in, from
    ``current_record``): the exports they asked for of it, when they manage it (their own
    record, a parent's or legal representative's); none otherwise. One simple query
    instead of the representations subquery."""
    if not record.may(MANAGE):
        return Export.objects.none()
    return exports_of(record.patient.pk, user.pk)


def exports_of(patient_id, user_id) -> QuerySet[Export]:
    """``exports_in_record`` once ``record.may(MANAGE)``: a builder for ``portal.prepared``."""
    return Export.objects.filter(patient=patient_id, requested_by=user_id)


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


def links_of_cared_patient(user, patient) -> list[CareLink]:
    """The active links of ``patient`` with their teams, by team name: each says
    (``mine``) whether it is one ``user`` may end (``links_managed_by``: for a patient
    they care for, a link of one of their teams). The first of theirs is the team
    ``team_caring_for`` names. A patient ``get_cared_patient`` returned for ``user`` is
    not asked about again; for any other, whether ``user`` cares for them is one indexed
    query, not a test of every link against everyone they care for."""
    if checked_for(user, patient) or (_is_active(user, User.Role.CLINICIAN) and _cared_patient(user.pk, patient.pk)):
        links = _links_with_mine(patient.pk, user.pk)
    else:  # not cared for: none of the links is the user's to end
        links = list(_active_links_of(patient.pk).annotate(mine=Value(False)))
    for link in links:
        link.patient = patient
    return links


def _active_links_of(patient_id) -> QuerySet[CareLink]:
    links = CareLink.objects.filter(patient=patient_id, status=CareLink.Status.ACTIVE).select_related("team")
    return links.order_by("team__name", "team_id")


@prepared
def _links_with_mine(patient_id, user_id):
    """The patient's active links, ``mine`` when of a team of ``user_id`` (who cares for
    the patient: checked by ``get_cared_patient``)."""
    return _active_links_of(patient_id).annotate(
        mine=Exists(Membership.objects.filter(team=OuterRef("team"), user=user_id))
    )


def get_managed_link(user, pk) -> CareLink:
    """A link ``user`` may end (see ``links_managed_by``); 404 otherwise."""
    try:
        return links_managed_by(user).select_related("patient", "team").get(pk=pk)
    except (CareLink.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def teams_managed_by(user) -> QuerySet[CareTeam]:
    """The care teams ``user`` manages (changes their settings)."""
    return teams_of(user).filter(memberships__user=user, memberships__is_manager=True)


def get_team_settings_for(user, pk) -> tuple[CareTeam, bool]:
    """One of ``user``'s care teams, and whether they manage it; 404 for any other team."""
    team = get_team_for(user, pk)
    return team, teams_managed_by(user).filter(pk=team.pk).exists()


def get_team_api_client_for(user, pk):
    """An API client of a team ``user`` manages (to rotate its secret or revoke it);
    404 for a member who does not manage the team, and for any other team's client."""
    from fhir_api.models import ApiClient  # fhir_api's services use this module

    try:
        return ApiClient.objects.select_related("team", "application").get(pk=pk, team__in=teams_managed_by(user))
    except (ApiClient.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def team_members_told(team, patient) -> QuerySet[User]:
    """The logins to tell (content-free) of something ``patient`` did that ``team`` owns
    (an appointment they cancelled, a comment on an entry the team wrote): the team's
    active clinicians who care for the patient through that very team (an active link),
    none the patient blocked. Nobody when the link is ended or blocked."""
    linked = CareLink.objects.filter(team=team, patient=patient, status=CareLink.Status.ACTIVE)
    return (
        User.objects.filter(Exists(linked), is_active=True, role=User.Role.CLINICIAN, memberships__team=team)
        .exclude(Exists(ClinicianBlock.objects.filter(patient=patient, clinician=OuterRef("pk"))))
        .order_by("pk")
    )
