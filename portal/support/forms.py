from django import forms
from django.utils.translation import gettext_lazy as _

from portal.accounts.forms import clean_new_address
from portal.accounts.models import Representation, User
from portal.accounts.services import address_in_use
from portal.careteams import forms as careteams_forms
from portal.careteams.models import CareTeam
from portal.support.models import SupportRequest


class ActionForm(forms.Form):
    """The confirmation of a support action: the agent's reason, and a one-time key so
    that a form sent twice acts once."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required. Kept in the support audit trail; the account holder does not see it."),
        error_messages={"required": _("Give the reason for this action.")},
    )
    request_key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, account=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.account = account
        # The action's own fields come first, the reason last.
        self.order_fields([name for name in self.fields if name not in ("reason", "request_key")])

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Give the reason for this action."))
        return reason


class ChangeEmailForm(ActionForm):
    email = forms.EmailField(
        label=_("New email address"),
        help_text=_("A link is sent there; the address changes once the account holder follows it."),
    )

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if email == self.account.email.lower():
            raise forms.ValidationError(_("This is already the account's address."))
        if address_in_use(email, self.account):
            raise forms.ValidationError(_("This address is already used by another account."))
        return email


class TeamForm(ActionForm):
    """Choose the care team of an action on a clinician (join, leave, manage or no longer
    manage it) among ``teams``."""

    team = forms.ModelChoiceField(label=_("Care team"), queryset=CareTeam.objects.none(), empty_label=None)

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams.order_by("name")


class InvitePatientForm(ActionForm):
    email = forms.EmailField(
        label=_("Patient's email address"),
        help_text=_("The link is valid for 72 hours; the patient proves who they are with their birth date."),
    )

    def clean_email(self):
        return clean_new_address(self.cleaned_data["email"])


class CreateAccountForm(ActionForm):
    first_name = forms.CharField(label=_("First name"), max_length=150)
    last_name = forms.CharField(label=_("Last name"), max_length=150)
    email = forms.EmailField(label=_("Email address"))
    teams = forms.ModelMultipleChoiceField(
        label=_("Care teams"),
        queryset=CareTeam.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one care team.")},
    )

    def __init__(self, *args, role=User.Role.CLINICIAN, **kwargs):
        super().__init__(*args, **kwargs)
        if role != User.Role.CLINICIAN:
            del self.fields["teams"]

    def clean_email(self):
        return clean_new_address(self.cleaned_data["email"])


class AnswerReportForm(forms.Form):
    """Support's answer to a patient's report of an access: the patient reads it, and it
    is kept in the support audit trail. A one-time key makes a double submit act once."""

    answer = forms.CharField(
        label=_("Answer to the patient"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("The patient reads it on their access history; it is also kept in the support audit trail."),
        error_messages={"required": _("Write the answer to the patient.")},
    )
    request_key = forms.UUIDField(widget=forms.HiddenInput)

    def clean_answer(self):
        answer = self.cleaned_data["answer"].strip()
        if not answer:
            raise forms.ValidationError(_("Write the answer to the patient."))
        return answer


class RegisterPatientForm(ActionForm, careteams_forms.RegisterPatientForm):
    """Support registers a patient for any care team, with a reason for the trail."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, teams=CareTeam.objects.all(), **kwargs)


class ApiClientForm(careteams_forms.ApiClientForm):
    """A care team's software, registered for the FHIR API by support, for any team."""

    team = forms.ModelChoiceField(label=_("Care team"), queryset=CareTeam.objects.order_by("name"))
    field_order = ["team", "name", "scopes"]


class ContactForm(forms.ModelForm):
    """The contact form: about an account, never about care (that goes to the care team).
    A one-time key makes a double submit one case."""

    request_key = forms.UUIDField(widget=forms.HiddenInput)

    class Meta:
        model = SupportRequest
        fields = ["name", "email", "topic", "message"]
        labels = {"name": _("Your name"), "email": _("Your email address"), "topic": _("What is it about?")}
        help_texts = {
            "email": _("Support answers at this address."),
            "message": _(
                "Describe the account problem. Write nothing about your health: support staff do not "
                "see medical content and cannot answer medical questions. For those, write to your care team."
            ),
        }
        widgets = {"message": forms.Textarea(attrs={"rows": 6})}
        error_messages = {
            "name": {"required": _("Give your name.")},
            "email": {"required": _("Give the email address where support should answer.")},
            "topic": {"required": _("Choose what it is about.")},
            "message": {"required": _("Describe the problem.")},
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["topic"].choices = [("", _("Choose…")), *SupportRequest.Topic.choices]
        self.fields["name"].widget.attrs["autocomplete"] = "name"
        self.fields["email"].widget.attrs["autocomplete"] = "email"

    def clean_message(self):
        message = self.cleaned_data["message"].strip()
        if not message:
            raise forms.ValidationError(_("Describe the problem."))
        return message


class AnswerRequestForm(forms.Form):
    """Support's answer to a contact request, emailed to the address it came from."""

    answer = forms.CharField(
        label=_("Answer"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Emailed to the person at the address they gave; kept with the case."),
        error_messages={"required": _("Write the answer.")},
    )

    def clean_answer(self):
        answer = self.cleaned_data["answer"].strip()
        if not answer:
            raise forms.ValidationError(_("Write the answer."))
        return answer


class AddRepresentativeForm(ActionForm):
    """Support adds a parent or a legal representative: the proof seen, and a reason."""

    email = forms.EmailField(
        label=_("The representative's Carnet account email"),
        help_text=_("They first open their own Carnet account."),
    )
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=[(Representation.Kind.PARENT, Representation.Kind.PARENT.label),
                 (Representation.Kind.LEGAL, Representation.Kind.LEGAL.label)],
    )  # fmt: skip
    proof = forms.ChoiceField(label=_("Proof seen"), choices=Representation.Proof.choices)
