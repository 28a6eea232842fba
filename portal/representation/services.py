"""Representation workflows: a parent or a legal representative added by a care team or
by support, a trusted helper invited by the patient, a representation ended (by the
patient, by support, at the coming of age). Who may start them is checked by the caller
through ``portal.access``; the models are in ``portal.accounts.models``."""

import contextlib
import datetime
import hashlib
import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal import jobs
from portal.accounts.models import HelperInvitation, Patient, Representation, User
from portal.mail import send_bilingual

MAJORITY_AGE = 18
HELPER_MIN_DAYS = 30


def helper_end_bounds(today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The first and last end dates a helper may be chosen until: one month, and one year
    (the same date next year; from 29 February, the 28th), from ``today``."""
    try:
        latest = today.replace(year=today.year + 1)
    except ValueError:
        latest = datetime.date(today.year + 1, 2, 28)
    return today + datetime.timedelta(days=HELPER_MIN_DAYS), latest


INVITATION_LIFETIME = datetime.timedelta(days=7)


class RepresentationError(Exception):
    """The representation cannot be made or ended; ``str()`` says why, to the person acting;
    ``field``, the form's field it is about, when there is one."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


def adult_on(patient: Patient, day: datetime.date) -> bool:
    """Whether ``patient`` is ``MAJORITY_AGE`` or older on ``day`` (born on 29 February:
    of age on 1 March of a common year)."""
    birth = patient.birth_date
    try:
        birthday = birth.replace(year=birth.year + MAJORITY_AGE)
    except ValueError:
        birthday = datetime.date(birth.year + MAJORITY_AGE, 3, 1)
    return day >= birthday


def _representative_by_email(email: str) -> User:
    user = User.objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is None or not user.is_patient:
        raise RepresentationError(
            _("No active Carnet account uses this address. The representative first opens their own account.")
        )
    return user


@transaction.atomic
def add_representative(
    *, patient: Patient, email: str, kind: str, created_by: User, proof: str = "", reason: str = ""
) -> Representation:
    """Add a holder of parental authority (the patient a minor) or a legal representative
    (the patient an adult) to ``patient``'s record, by the representative's account email.
    Each parent may be added: one open representation per person and record."""
    if kind not in (Representation.Kind.PARENT, Representation.Kind.LEGAL):
        raise RepresentationError(_("Choose parental authority or legal representative."))
    adult = adult_on(patient, timezone.localdate())
    if kind == Representation.Kind.PARENT and adult:
        raise RepresentationError(_("Parental authority ends at 18: this patient is of age."))
    if kind == Representation.Kind.LEGAL and not adult:
        raise RepresentationError(_("A minor is represented by the holders of parental authority."))
    representative = _representative_by_email(email)
    if patient.user_id == representative.pk:
        raise RepresentationError(_("Nobody represents themselves."))
    try:
        with transaction.atomic():
            representation = Representation.objects.create(
                patient=patient, representative=representative, kind=kind, proof=proof, reason=reason.strip(),
                created_by=created_by,
            )  # fmt: skip
    except IntegrityError:
        raise RepresentationError(_("This person already represents this patient.")) from None
    _tell(representative, "added", patient)
    return representation


@transaction.atomic
def end_representation(*, representation: Representation, ended_by: User | None, reason: str) -> bool:
    """End ``representation`` (by support, by the patient, or at the coming of age when
    ``ended_by`` is None); both sides are told. Returns False when it had ended already:
    ending twice tells nobody twice."""
    row = (
        Representation.objects.select_for_update().select_related("patient", "representative").get(pk=representation.pk)
    )
    if row.ended_at is not None:
        return False
    row.ended_at, row.ended_by, row.end_reason = timezone.now(), ended_by, reason.strip()[:500]
    row.save(update_fields=["ended_at", "ended_by", "end_reason"])
    _tell(row.representative, "ended", row.patient)
    if row.patient.user_id is not None and row.patient.user_id != getattr(ended_by, "pk", None):
        _tell(row.patient.user, "ended_holder", row.patient)
    return True


def end_minorities(*, today: datetime.date | None = None) -> int:
    """Daily: the parental representations of patients who turned 18 end by themselves;
    the parents are told and the young adult, when an address is known for them, is
    invited to take over their record. Idempotent: what has ended stays ended, and
    nothing is sent twice. Returns how many ended."""
    from portal.accounts import services as accounts

    today = today or timezone.localdate()
    cutoff = (
        today.replace(year=today.year - MAJORITY_AGE)
        if not (today.month == 2 and today.day == 29)
        else (datetime.date(today.year - MAJORITY_AGE, 2, 28))
    )
    due = Representation.objects.filter(
        kind=Representation.Kind.PARENT, ended_at__isnull=True, patient__birth_date__lte=cutoff
    ).select_related("patient")
    ended = 0
    invited = set()
    for representation in due:
        patient = representation.patient
        if not adult_on(patient, today):
            continue
        if end_representation(representation=representation, ended_by=None, reason="majority"):
            ended += 1
            if patient.user_id is None and patient.pk not in invited:
                invited.add(patient.pk)
                email = _takeover_address(patient)
                if email:
                    with contextlib.suppress(accounts.InvitationError):
                        accounts.invite_patient(invited_by=None, patient=patient, email=email)
    return ended


def _takeover_address(patient: Patient) -> str:
    """The young adult's own address, when a care team or support gave one in an
    earlier invitation; else none (their care team invites them)."""
    return patient.invitations.order_by("-created_at").values_list("email", flat=True).first() or ""


# --- Trusted helpers --------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def invite_helper(*, patient: Patient, invited_by: User, email: str, parts, ends_on: datetime.date) -> HelperInvitation:
    """An adult patient invites a trusted helper for ``parts`` until ``ends_on`` (one month
    to one year from today). The link is made and emailed after commit; a pending
    invitation to the same address is replaced (its link stops working)."""
    today = timezone.localdate()
    if not adult_on(patient, today):
        raise RepresentationError(_("Only an adult patient chooses trusted helpers."))
    if not set(parts) or not set(parts) <= set(Representation.PARTS):
        raise RepresentationError(_("Choose at least one part of your record."))
    earliest, latest = helper_end_bounds(today)
    if not earliest <= ends_on <= latest:
        raise RepresentationError(_("Choose an end date between one month and one year from today."), field="ends_on")
    if email.strip().lower() == invited_by.email.lower():
        raise RepresentationError(
            _("This is your own address: give the address your helper signs in to Carnet with."), field="email"
        )
    # Inviting the same address again (another tab, changed parts or end date) replaces the
    # pending invitation: one live link per address, the last one chosen.
    HelperInvitation.objects.filter(
        patient=patient, email=email.strip().lower(), used_at__isnull=True, cancelled_at__isnull=True
    ).update(cancelled_at=timezone.now())
    invitation = HelperInvitation.objects.create(
        patient=patient, email=email.strip().lower(), invited_by=invited_by,
        ends_at=timezone.make_aware(datetime.datetime.combine(ends_on, datetime.time.max)),
        expires_at=timezone.now() + INVITATION_LIFETIME, **{part: True for part in parts},
    )  # fmt: skip
    from portal.representation.tasks import send_helper_invitation

    jobs.enqueue_on_commit(send_helper_invitation, invitation.pk)
    return invitation


def cancel_helper_invitation(*, invitation: HelperInvitation) -> bool:
    """The patient takes back an invitation not yet accepted (a mistyped address): its link
    stops working at once. Returns whether it was still pending (a second click: False)."""
    return bool(
        HelperInvitation.objects.filter(pk=invitation.pk, used_at__isnull=True, cancelled_at__isnull=True).update(
            cancelled_at=timezone.now()
        )
    )


def send_helper_invitation_email(*, invitation: HelperInvitation) -> None:
    """Issue the invitation's link (an earlier one stops working) and email it, with the
    inviter's first name only: nothing of the record."""
    token = secrets.token_urlsafe(32)
    invitation.token_hash = _token_hash(token)
    invitation.save(update_fields=["token_hash"])
    url = settings.SITE_URL + reverse("representation:accept", args=[token])
    send_bilingual(
        invitation.email, gettext_lazy("An invitation to help on Carnet"), "representation/email/helper_invitation.txt",
        {"url": url, "name": invitation.patient.first_name},
    )  # fmt: skip


def get_helper_invitation(*, token: str) -> HelperInvitation:
    """The usable invitation behind a link; RepresentationError otherwise."""
    invitation = HelperInvitation.objects.select_related("patient").filter(token_hash=_token_hash(token or "")).first()
    if invitation is None or not invitation.is_usable():
        raise RepresentationError(_("This invitation link is not valid any more."))
    return invitation


@transaction.atomic
def accept_helper_invitation(*, token: str, helper: User) -> Representation:
    """The signed-in helper (past their second factor) accepts: they act for the parts
    and until the date the patient chose."""
    return _accept(_usable_invitation(token), helper)


def _usable_invitation(token: str) -> HelperInvitation:
    """The invitation of ``token``, locked until the transaction ends, while it may be used."""
    invitation = HelperInvitation.objects.select_for_update().filter(token_hash=_token_hash(token or "")).first()
    if invitation is None or not invitation.is_usable():
        raise RepresentationError(_("This invitation link is not valid any more."))
    return invitation


def _accept(invitation: HelperInvitation, helper: User) -> Representation:
    if helper.email.lower() == invitation.email and not helper.is_patient:
        # The invited address is a professional's or support's login, which acts for no
        # patient: said at acceptance (saying it when inviting would tell the patient
        # whose address is a professional's account).
        raise RepresentationError(
            _(
                "A professional's or support account cannot act for a patient: ask the patient to invite "
                "an address of your own that you use as a patient."
            )
        )
    if not helper.is_patient or invitation.patient.user_id == helper.pk or helper.email.lower() != invitation.email:
        raise RepresentationError(
            _("This invitation was sent to another address: sign in with the account that uses it.")
        )
    try:
        with transaction.atomic():
            representation = Representation.objects.create(
                patient=invitation.patient, representative=helper, kind=Representation.Kind.HELPER,
                ends_at=invitation.ends_at, created_by=invitation.invited_by,
                **{part: getattr(invitation, part) for part in Representation.PARTS},
            )  # fmt: skip
    except IntegrityError:
        raise RepresentationError(_("You already act for this record.")) from None
    invitation.used_at, invitation.representation = timezone.now(), representation
    invitation.save(update_fields=["used_at", "representation"])
    _tell(invitation.patient.user, "helper_accepted", invitation.patient)
    return representation


@transaction.atomic
def create_helper_account(*, token: str, first_name: str, last_name: str, password: str) -> User:
    """A helper who has no Carnet account makes one from the invitation's link, and
    accepts it: the link reached the invited address, which is so verified (as a patient's
    invitation does). Their second factor is enrolled next, before any page of the record.
    An address that already has an account signs in with it instead (RepresentationError)."""
    from allauth.account.models import EmailAddress

    from portal.accounts.services import address_in_use

    invitation = _usable_invitation(token)
    if address_in_use(invitation.email):
        raise RepresentationError(
            _("A Carnet account already uses this address: sign in with it, then open the link again.")
        )
    helper = User.objects.create_user(
        invitation.email, password, role=User.Role.PATIENT, first_name=first_name.strip(), last_name=last_name.strip()
    )
    EmailAddress.objects.create(user=helper, email=helper.email, verified=True, primary=True)
    _accept(invitation, helper)
    return helper


# --- Content-free emails ------------------------------------------------------------------

NOTICES = {
    "added": "representation/email/added.txt",
    "ended": "representation/email/ended.txt",
    "ended_holder": "representation/email/ended_holder.txt",
    "helper_accepted": "representation/email/helper_accepted.txt",
}


def _tell(user: User | None, notice: str, patient: Patient) -> None:
    """Email ``user`` a notice about a representation, after commit: the record's first
    name at most, never anything of its content."""
    if user is None or not user.is_active:
        return
    from portal.representation.tasks import send_notice

    jobs.enqueue_on_commit(send_notice, user.pk, notice, patient.pk)


def send_notice(*, user: User, notice: str, patient: Patient) -> None:
    send_bilingual(
        user.email, gettext_lazy("Representation on Carnet"), NOTICES[notice],
        {"name": patient.first_name, "url": f"{settings.SITE_URL}/my/"},
    )  # fmt: skip
