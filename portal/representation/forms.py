from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.accounts.forms import NewPasswordForm
from portal.accounts.models import Representation
from portal.representation.services import helper_end_bounds

PART_CHOICES = [
    ("documents", _("Documents")),
    ("results", _("Lab results")),
    ("prescriptions", _("Prescriptions")),
    ("messages", _("Messages with my care teams")),
]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class HelperInvitationForm(forms.Form):
    """An adult patient chooses a trusted helper: who, which parts, until when."""

    email = forms.EmailField(
        label=_("Your helper's email address"),
        help_text=_(
            "The one they sign in to Carnet with; with no Carnet account yet, they make one from the invitation."
        ),
    )
    parts = forms.MultipleChoiceField(
        label=_("What they may see and do"), choices=PART_CHOICES, widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one part of your record.")},
    )  # fmt: skip
    ends_on = forms.DateField(
        label=_("Until"), widget=DateInput(), help_text=_("Between one month and one year from today.")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        earliest, latest = helper_end_bounds(timezone.localdate())  # the service's own bounds
        self.fields["ends_on"].widget.attrs.update(min=earliest.isoformat(), max=latest.isoformat())


class AddParentForm(forms.Form):
    """A care team adds a holder of parental authority to a minor's record, by the parent's
    own Carnet account email, with the proof seen."""

    email = forms.EmailField(
        label=_("The parent's Carnet account email"), help_text=_("They first open their own Carnet account.")
    )
    proof = forms.ChoiceField(label=_("Proof seen"), choices=Representation.Proof.choices)


class HelperAccountForm(NewPasswordForm):
    """A helper without a Carnet account makes one from the invitation: their name and a
    password (the address is the invitation's)."""

    first_name = forms.CharField(
        label=_("First name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "given-name"})
    )
    last_name = forms.CharField(
        label=_("Last name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "family-name"})
    )
    field_order = ["first_name", "last_name", "password1", "password2"]
