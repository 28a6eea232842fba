from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.audit.models import ChainedLog


class SupportAction(ChainedLog):
    """One action of a support agent on an account, with the agent's reason.
    Append-only and hash-chained, like the access log (the model refuses changes; on
    PostgreSQL a trigger does too). The reason is internal: patients never see it.
    One chain for the whole trail: support acts at a human pace, many actions concern
    no patient, and the trail is verified as one sequence."""

    CHAIN_LOCK = 0x53757074  # "Supt"
    CHAIN_FIELDS = ("agent_id", "account_id", "patient_id", "action", "detail", "reason", "request_key", "at")

    class Action(models.TextChoices):
        DEACTIVATE = "deactivate", _("Deactivated the account")
        REACTIVATE = "reactivate", _("Reactivated the account")
        UNLOCK = "unlock", _("Lifted the sign-in lockout")
        RESET_SECOND_FACTOR = "reset_second_factor", _("Reset the second factor")
        END_SESSIONS = "end_sessions", _("Ended all sessions")
        INVITE = "invite", _("Sent an invitation")
        RESEND_INVITATION = "resend_invitation", _("Sent a new invitation link")
        CHANGE_EMAIL = "change_email", _("Started a change of email address")
        CREATE_ACCOUNT = "create_account", _("Created the account")
        ADD_MEMBERSHIP = "add_membership", _("Added to a care team")
        REMOVE_MEMBERSHIP = "remove_membership", _("Removed from a care team")
        MAKE_MANAGER = "make_manager", _("Made a manager of a care team")
        REMOVE_MANAGER = "remove_manager", _("Removed as a manager of a care team")
        ANSWER_REPORT = "answer_report", _("Answered a report of an unrecognised access")
        REGISTER_PATIENT = "register_patient", _("Registered the patient")
        LINK_PATIENT = "link_patient", _("Linked the patient to a care team")
        ADD_REPRESENTATIVE = "add_representative", _("Added a representative to the record")
        END_REPRESENTATION = "end_representation", _("Ended a representation")
        MERGE_PATIENTS = "merge_patients", _("Merged a duplicate record into this one")

    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The account acted on, or, for an invitation to a patient who has no login yet, the patient.
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="support_actions"
    )
    patient = models.ForeignKey("accounts.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32, choices=Action.choices)
    # What the action was about (a team's name, an email address): for the support trail only.
    detail = models.CharField(max_length=254, blank=True)
    reason = models.TextField(max_length=1000)
    # From the confirmation form: a double submit writes one row, not two.
    request_key = models.UUIDField(unique=True)
    at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(account__isnull=False) | models.Q(patient__isnull=False),
                name="supportaction_has_subject",
            )
        ]

    def __str__(self):
        return f"{self.agent} {self.action} {self.account or self.patient}"


class SupportRequest(models.Model):
    """A message to support from the contact form, about an account (never about care):
    a case in the support console, answered by email. Sent signed in or not; the email
    address given is where the answer goes."""

    class Topic(models.TextChoices):
        SIGN_IN = "sign_in", _("I cannot sign in")
        SECOND_FACTOR = "second_factor", _("I lost my second factor (phone, app, codes)")
        DEACTIVATED = "deactivated", _("My account is deactivated")
        INVITATION = "invitation", _("My invitation does not work")
        EMAIL = "email", _("I want to change my email address")
        OTHER = "other", _("Something else about my account")

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("support request", "Open")
        ANSWERED = "answered", pgettext_lazy("support request", "Answered")

    name = models.CharField(_("name"), max_length=150)
    email = models.EmailField(_("email address"))
    topic = models.CharField(_("topic"), max_length=16, choices=Topic.choices)
    message = models.TextField(_("message"), max_length=2000)
    # The account it was sent from, when signed in (support still answers by email).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="support_requests"
    )
    language = models.CharField(max_length=8, default=settings.LANGUAGE_CODE)
    # From the form: a double submit makes one case.
    request_key = models.UUIDField(unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    answer = models.TextField(max_length=2000, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    # Set when each email has gone: a retried task sends nothing more.
    receipt_sent_at = models.DateTimeField(null=True, blank=True)
    answer_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return f"#{self.pk} {self.status}"
