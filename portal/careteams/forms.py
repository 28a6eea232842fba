import datetime

from django import forms
from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from fhir_api.models import SCOPES as API_SCOPES
from portal import widgets
from portal.accounts.forms import clean_new_address
from portal.accounts.models import InsKind, Patient, normalized_ins, validate_nir
from portal.careteams.models import CareTeam
from portal.careteams.services import Identity

DATE_INPUT = {"type": "date"}
# A name as an identity document writes it: letters (accented ones too), separated by a
# space, a hyphen or an apostrophe (« N’Diaye », « Le Gall-Martin »); no digit, no markup.
identity_name = RegexValidator(
    r"^[^\W\d_]+(?:[\s'’-]+[^\W\d_]+)*$",
    message=_("Use letters only, with spaces, hyphens or apostrophes between the names, as on the identity document."),
    code="name_characters",
)
# What phones and word processors put for an apostrophe or a hyphen, read as the one the
# identity document has: « N‘Diaye », « Nʼdiaye », « Lefèvre–Dupont ».
_NAME_LOOKALIKES = str.maketrans(
    {**dict.fromkeys("\u2018\u02bc`\u00b4", "’"), **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014", "-")}
)


class IdentityNameField(forms.CharField):
    """A name of the identity: its look-alike apostrophes and dashes read as the usual ones
    before ``identity_name`` checks it."""

    def to_python(self, value):
        return super().to_python(value).translate(_NAME_LOOKALIKES)


# The first character of a NIR: 1 (or 3, 7) for a man, 2 (or 4, 8) for a woman.
NIR_SEX = {"1": "male", "3": "male", "7": "male", "2": "female", "4": "female", "8": "female"}


class IdentityForm(forms.Form):
    """The identity traits of the INS reference, as on the identity document."""

    birth_name = IdentityNameField(
        label=_("Birth name"),
        max_length=100,
        validators=[identity_name],
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    first_names = IdentityNameField(
        label=_("First names at birth"),
        max_length=200,
        validators=[identity_name],
        help_text=_("All of them, in order, as on the identity document, separated by spaces."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    used_name = IdentityNameField(
        label=_("Used name"),
        max_length=100,
        required=False,
        validators=[identity_name],
        help_text=_("If different from the birth name (e.g. a spouse's name)."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    sex = forms.ChoiceField(label=_("Sex"), choices=Patient.Sex.choices, widget=forms.RadioSelect)
    birth_date = forms.DateField(label=_("Birth date"), widget=forms.DateInput(attrs=DATE_INPUT, format="%Y-%m-%d"))
    birth_place = forms.RegexField(
        label=_("Birth place code (INSEE)"),
        regex=r"^(?:[0-9]{5}|2[AB][0-9]{3})$",
        required=False,
        max_length=5,
        help_text=_("5 characters: the commune's code, or 99 and the country's code for a birth abroad."),
        error_messages={"invalid": _("An INSEE code has 5 characters.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "text"}),
    )
    ins = forms.CharField(
        label=_("INS (national health identifier)"),
        required=False,
        max_length=21,
        help_text=_("15 characters, key included. Leave empty if the identity has not been checked yet."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )
    ins_oid = forms.ChoiceField(label=_("Kind of identifier"), choices=InsKind.choices, initial=InsKind.NIR)

    def clean_birth_date(self):
        birth_date = self.cleaned_data["birth_date"]
        if birth_date > timezone.localdate() or birth_date < datetime.date(1880, 1, 1):
            raise forms.ValidationError(_("Check the birth date."))
        return birth_date

    def clean_birth_place(self):
        return self.cleaned_data["birth_place"].upper()

    def clean_ins(self):
        ins = normalized_ins(self.cleaned_data["ins"])
        if ins:
            validate_nir(ins)
        return ins

    def clean(self):
        data = super().clean()
        ins, birth_date, sex = data.get("ins"), data.get("birth_date"), data.get("sex")
        if ins and birth_date and ins[1:3] != f"{birth_date.year % 100:02d}":
            self.add_error("ins", _("This INS is not that of someone born in %(year)s.") % {"year": birth_date.year})
        elif ins and birth_date and "01" <= ins[3:5] <= "12" and int(ins[3:5]) != birth_date.month:
            self.add_error("ins", _("This INS does not match the month of birth."))
        elif ins and sex in ("male", "female") and NIR_SEX.get(ins[0], sex) != sex:
            self.add_error("ins", _("This INS does not match the sex given."))
        return data

    def identity(self) -> Identity:
        data = self.cleaned_data
        return Identity(**{name: data[name] for name in Identity.__dataclass_fields__})


class RegisterPatientForm(IdentityForm):
    """Register a patient for a care team: identity, link start, optional invitation."""

    team = forms.ModelChoiceField(label=_("Care team"), queryset=None, empty_label=None)
    started_on = forms.DateField(
        label=_("In the team's care since"), widget=forms.DateInput(attrs=DATE_INPUT, format="%Y-%m-%d")
    )
    email = forms.EmailField(
        label=_("Patient's email address, to invite them to Carnet"),
        required=False,
        help_text=_("Optional. They will receive a link, valid for 72 hours, and confirm their birth date."),
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    # The candidates the clinician was shown and set aside ("none of these is the person").
    none_of = forms.CharField(required=False, widget=forms.HiddenInput)
    confirm_new = forms.BooleanField(label=_("None of these records is this person: create a new one"), required=False)

    field_order = ["team", *IdentityForm.base_fields, "started_on", "email"]

    def __init__(self, *args, teams, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("started_on", timezone.localdate())
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        if len(teams) == 1:
            self.fields["team"].initial = teams.first()

    def clean_email(self):
        email = self.cleaned_data["email"]
        return clean_new_address(email) if email else ""

    def clean_started_on(self):
        started_on = self.cleaned_data["started_on"]
        if started_on > timezone.localdate():
            raise forms.ValidationError(_("The start date cannot be in the future."))
        return started_on

    def clean(self):
        cleaned = super().clean()
        born, started_on = cleaned.get("birth_date"), cleaned.get("started_on")
        if born and started_on and started_on < born:
            self.add_error("started_on", _("The start date is before the patient's birth."))
        return cleaned

    def set_aside(self) -> list[int]:
        """The candidates the clinician said are not this person."""
        if not self.cleaned_data.get("confirm_new"):
            return []
        return [int(pk) for pk in self.cleaned_data.get("none_of", "").split(",") if pk.isdecimal()]


class EndLinkForm(forms.Form):
    ended_on = forms.DateField(label=_("End date"), widget=forms.DateInput(attrs=DATE_INPUT, format="%Y-%m-%d"))

    def __init__(self, *args, link, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("ended_on", timezone.localdate())
        super().__init__(*args, **kwargs)
        self.link = link

    def clean_ended_on(self):
        ended_on = self.cleaned_data["ended_on"]
        if ended_on > timezone.localdate():
            raise forms.ValidationError(_("The end date cannot be in the future."))
        if ended_on < self.link.started_on:
            raise forms.ValidationError(_("The end date cannot be before the link started."))
        return ended_on


class PatientSearchForm(forms.Form):
    # On every page of the patient list: widgets written without templates (portal.widgets).
    name = forms.CharField(
        label=_("Name"),
        required=False,
        max_length=100,
        help_text=_("The start of the first or last name; accents do not matter."),
        widget=widgets.TextInput(),
    )
    ins = forms.CharField(label=_("INS"), required=False, max_length=21, widget=widgets.TextInput())
    birth_date = forms.DateField(
        label=_("Birth date"), required=False, widget=widgets.DateInput(attrs=DATE_INPUT, format="%Y-%m-%d")
    )
    unread = forms.BooleanField(label=_("With unread messages"), required=False, widget=widgets.CheckboxInput())
    new_results = forms.BooleanField(
        label=_("With results my teams have not seen"), required=False, widget=widgets.CheckboxInput()
    )

    def clean_ins(self):
        return normalized_ins(self.cleaned_data["ins"])


class TeamSettingsForm(forms.ModelForm):
    class Meta:
        model = CareTeam
        fields = ["cancellation_notice_hours", "reply_days"]
        widgets = {
            "cancellation_notice_hours": forms.NumberInput(attrs={"min": 0, "max": 720}),
            "reply_days": forms.NumberInput(attrs={"min": 0, "max": 30}),
        }

    def clean_cancellation_notice_hours(self):
        hours = self.cleaned_data["cancellation_notice_hours"]
        if hours > 720:
            raise forms.ValidationError(_("At most 720 hours (30 days)."), code="max")
        return hours


class ApiClientForm(forms.Form):
    """A care team's software, registered for the FHIR API by a manager of the team
    (support's form adds the choice of the team)."""

    name = forms.CharField(
        label=_("Software name"), max_length=100, help_text=_("As the team knows it, e.g. its practice software.")
    )
    scopes = forms.MultipleChoiceField(
        label=_("What it may do"),
        widget=forms.CheckboxSelectMultiple,
        choices=[(scope, format_lazy("{} ({})", label, scope)) for scope, label in API_SCOPES.items()],
    )
