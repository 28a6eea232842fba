"""Care teams take on patients: registration with the INS identity (duplicates found
before they exist), links with a start and an end date."""

import datetime
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts import services as account_services
from portal.accounts.models import Patient, User
from portal.audit.models import AccessLog
from portal.careteams.models import CareLink, CareTeam, ClinicianBlock

# Namespace of the PostgreSQL advisory locks taken while registering (any constant).
REGISTRATION_LOCK = 16_0001
NEVER = datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)  # before any look: everything is new


@dataclass(frozen=True, kw_only=True)
class Identity:
    """A person's identity as the INS reference records it."""

    birth_name: str
    first_names: str
    used_name: str = ""
    sex: str = Patient.Sex.UNKNOWN
    birth_date: datetime.date
    birth_place: str = ""
    ins: str = ""
    ins_oid: str = ""


class RegistrationError(Exception):
    """Nothing was registered; the message says why."""


class PatientExists(RegistrationError):
    """A patient with this INS is already in Carnet: link them rather than make a twin."""

    def __init__(self, patient: Patient):
        super().__init__(patient.pk)
        self.patient = patient


class PossibleDuplicates(RegistrationError):
    """Patients with the same names and birth date exist: the clinician must choose one
    of them, or say none is the person before a new record is made."""

    def __init__(self, candidates: list[Patient]):
        super().__init__([candidate.pk for candidate in candidates])
        self.candidates = candidates


class LinkBlocked(RegistrationError):
    """The patient has blocked this team: only they can give it access again."""

    def __str__(self):
        return str(_("This patient has blocked your care team: only they can give it access again."))


class BlockedNamesake(LinkBlocked):
    """A record this identity matches by names and birth date has blocked the team (or
    the professional registering): saying it is someone else cannot make a new record
    around the block, unless both have an INS, which tells two people apart."""

    def __str__(self):
        return str(
            _(
                "A record with these names and birth date has blocked this care team: no new record can be made "
                "for them. If this is another person, register them with their INS."
            )
        )


class NotAMatch(RegistrationError):
    """The chosen patient is not one the identity given matches."""


def _lock_birth_date(birth_date: datetime.date) -> None:
    """Registrations of people born the same day wait for each other until commit, so
    the second one sees the first as a duplicate (on SQLite, writes are serial anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [REGISTRATION_LOCK, birth_date.toordinal()])


def find_duplicates(*, identity: Identity) -> list[Patient]:
    """The records that may be this person: the one with the same INS, and those born the
    same day whose first first name and birth, used or last name match, case, accents,
    apostrophes, hyphens, spaces and dots aside (``Patient.same_person_as``). One indexed
    query (birth date or INS); few rows share a birth date."""
    same_day = Patient.objects.filter(birth_date=identity.birth_date)
    if identity.ins:
        same_day = same_day | Patient.objects.filter(ins=identity.ins)
    names = {"birth_name": identity.birth_name, "first_names": identity.first_names, "used_name": identity.used_name}
    return [
        patient
        for patient in same_day.order_by("pk")
        if (identity.ins and patient.ins == identity.ins) or patient.same_person_as(**names)
    ]


def with_link_status(team: CareTeam, patients: list[Patient]) -> list[Patient]:
    """``patients``, each with ``team_link``: the status of ``team``'s link to them
    (active, ended, blocked; "" for none). The registration form says at once when a
    record found is already the team's patient, or has blocked it (then without its
    identity's other details or a button to link it)."""
    statuses = dict(CareLink.objects.filter(team=team, patient__in=patients).values_list("patient_id", "status"))
    for patient in patients:
        patient.team_link = statuses.get(patient.pk, "")
    return patients


def _blocking(patients: list[Patient], *, team: CareTeam, by: User) -> list[Patient]:
    """Those of ``patients`` who have blocked ``team``, or ``by`` themselves."""
    if not patients:
        return []
    ids = [patient.pk for patient in patients]
    blocked = set(
        CareLink.objects.filter(team=team, patient__in=ids, status=CareLink.Status.BLOCKED).values_list(
            "patient_id", flat=True
        )
    )
    blocked |= set(ClinicianBlock.objects.filter(clinician=by, patient__in=ids).values_list("patient_id", flat=True))
    return [patient for patient in patients if patient.pk in blocked]


def _trace_link(*, by: User, link: CareLink, action: str) -> None:
    """The patient reads in their access history who linked or unlinked which team."""
    AccessLog.objects.create(
        patient_id=link.patient_id, actor=by, actor_role=by.role, team=link.team, action=action, target=link.team.name
    )


def link_patient(*, by: User, team: CareTeam, patient: Patient, started_on: datetime.date) -> CareLink:
    """Give ``team`` an active link to ``patient`` from ``started_on``; an ended link is
    opened again, an active one stays as it is. A link the patient blocked is refused
    (``LinkBlocked``). The caller has checked that ``by`` acts for ``team``."""
    with transaction.atomic():
        link, created = CareLink.objects.select_for_update().get_or_create(
            patient=patient,
            team=team,
            defaults={"started_on": started_on, "linked_by": by, "status": CareLink.Status.ACTIVE},
        )
        if link.status == CareLink.Status.BLOCKED:
            raise LinkBlocked
        if not created and link.status == CareLink.Status.ACTIVE:
            return link
        if not created:
            link.status, link.started_on, link.ended_on, link.linked_by = CareLink.Status.ACTIVE, started_on, None, by
            link.status_changed_at = timezone.now()
            link.save(update_fields=["status", "started_on", "ended_on", "linked_by", "status_changed_at"])
        _trace_link(by=by, link=link, action=AccessLog.Action.LINK_STARTED)
    return link


@dataclass(frozen=True)
class Registered:
    patient: Patient
    link: CareLink
    created: bool
    invited: bool


def _invite(by: User, patient: Patient, email: str) -> bool:
    if not email or patient.user_id is not None:
        return False
    try:
        account_services.invite_patient(invited_by=by, patient=patient, email=email)
    except account_services.InvitationError:  # too many wrong birth dates lately
        return False
    return True


@transaction.atomic
def register_patient(
    *,
    by: User,
    team: CareTeam,
    identity: Identity,
    started_on: datetime.date,
    invite_email: str = "",
    none_of: list[int] | None = None,
) -> Registered:
    """Create ``identity``'s record, link it to ``team`` and, given an address, invite the
    patient. Refuses a second record with the same INS (``PatientExists``), also when two
    people register the same person at the same moment; refuses when records with the
    same names and birth date exist (``PossibleDuplicates``) unless the caller has seen
    them all and said none is the person (``none_of``: their ids)."""
    _lock_birth_date(identity.birth_date)
    candidates = find_duplicates(identity=identity)
    same_ins = next((candidate for candidate in candidates if identity.ins and candidate.ins == identity.ins), None)
    if same_ins is not None:
        raise PatientExists(same_ins)
    if candidates and not {candidate.pk for candidate in candidates} <= set(none_of or ()):
        raise PossibleDuplicates(candidates)
    for candidate in _blocking(candidates, team=team, by=by):
        if not (identity.ins and candidate.ins):  # two different INS: two people
            raise BlockedNamesake(candidate.pk)
    patient = Patient(
        sex=identity.sex,
        birth_date=identity.birth_date,
        birth_place=identity.birth_place,
        ins=identity.ins or None,
        ins_oid=identity.ins_oid if identity.ins else "",
    )
    patient.set_identity(birth_name=identity.birth_name, first_names=identity.first_names, used_name=identity.used_name)
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError:  # the INS arrived meanwhile by a way that took no lock
        raise PatientExists(Patient.objects.get(ins=identity.ins)) from None
    link = link_patient(by=by, team=team, patient=patient, started_on=started_on)
    return Registered(patient, link, created=True, invited=_invite(by, patient, invite_email))


@transaction.atomic
def link_existing_patient(
    *, by: User, team: CareTeam, identity: Identity, patient_pk: int, started_on: datetime.date, invite_email: str = ""
) -> Registered:
    """Link to ``team`` the existing record ``patient_pk`` that ``identity`` matches (see
    ``find_duplicates``); any other raises ``NotAMatch``: knowing an id is not enough
    to reach someone's record."""
    patient = next((p for p in find_duplicates(identity=identity) if p.pk == patient_pk), None)
    if patient is None:
        raise NotAMatch(patient_pk)
    link = link_patient(by=by, team=team, patient=patient, started_on=started_on)
    return Registered(patient, link, created=False, invited=_invite(by, patient, invite_email))


class EndDateError(RegistrationError):
    """The end date is before the link started, or in the future."""


@transaction.atomic
def end_link(*, by: User, link: CareLink, ended_on: datetime.date) -> CareLink:
    """End ``link`` on ``ended_on`` (the patient left the practice, the stay ended): the
    team loses access at once. The patient sees it on their care-teams page and in their
    access history. Ending an ended link changes nothing."""
    link = CareLink.objects.select_for_update().select_related("team").get(pk=link.pk)
    if link.status != CareLink.Status.ACTIVE:
        return link
    if ended_on < link.started_on or ended_on > timezone.localdate():
        raise EndDateError
    link.status, link.ended_on, link.status_changed_at = CareLink.Status.ENDED, ended_on, timezone.now()
    link.save(update_fields=["status", "ended_on", "status_changed_at"])
    _trace_link(by=by, link=link, action=AccessLog.Action.LINK_ENDED)
    return link


def _last_look(*, teams, patient):
    """When one of ``teams`` last opened ``patient``'s results page (``NEVER`` if none did):
    the latest look of each team, one probe of the index of looks at the results whatever
    their number, then the latest of those."""
    looks = AccessLog.objects.filter(patient=patient, team=OuterRef("pk"), action=AccessLog.Action.LIST_RESULTS)
    latest_of_each = CareTeam.objects.filter(pk__in=teams).annotate(
        last=Subquery(looks.order_by("-at").values("at")[:1])
    )
    latest = latest_of_each.filter(last__isnull=False).order_by("-last").values("last")[:1]
    return Coalesce(Subquery(latest), Value(NEVER))


def results_new_to(*, teams, patient, reports):
    """Of ``reports`` (``patient``'s, as the reader may see them), those another team (or a
    lab) published since one of ``teams`` last opened the patient's results page (one test's
    history shows one test, not the reports): ``results_unseen_by``, for one patient, newest
    arrived first, in one query."""
    last_look = _last_look(teams=teams, patient=patient)
    return reports.exclude(team__in=teams).filter(created_at__gt=last_look).order_by("-created_at", "-pk")


def teams_with_results_new_to(*, teams, patient, reports):
    """The care links of ``patient``'s other teams that published one of ``reports`` since
    one of ``teams`` last opened the results page: whether there are ``results_new_to``
    them, without walking through the reports of ``teams`` (a laboratory's own thousands).
    A team publishes only while linked, and links are never deleted (a merge keeps them):
    the record's other links name every other team that published. Each is asked for its
    first report since the look, one probe of the index (patient, team, created_at); a
    subquery with a limit, which the planner keeps per link."""
    since = reports.filter(team=OuterRef("team"), created_at__gt=_last_look(teams=teams, patient=patient))
    first = since.order_by().values("pk")[:1]
    others = CareLink.objects.filter(patient=patient).exclude(team__in=teams)
    return others.annotate(first_new=Subquery(first)).filter(first_new__isnull=False)


def results_unseen_by(*, teams):
    """Lab reports another team (or a lab) published that nobody of ``teams`` has looked
    at since: no opening of the record's results page by the team after the report arrived
    (the record's other pages show no result, one test's history one test). The team's own
    reports count as seen."""
    from records.models import LabReport

    seen_since = AccessLog.objects.filter(
        patient=OuterRef("patient"),
        team__in=teams,
        action=AccessLog.Action.LIST_RESULTS,
        at__gte=OuterRef("created_at"),
    )
    return LabReport.objects.exclude(team__in=teams).filter(~Exists(seen_since))
