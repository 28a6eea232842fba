from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from portal import widgets
from records import files
from records.fhir_codes import loinc_is_valid
from records.models import Allergy, Condition, Document, Measurement, Observation, Prescription, Vaccination


class DateInput(widgets.DateInput):
    """A date box (the browser's date picker), written without a template (``portal.widgets``)."""

    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


def not_in_future(day):
    """Care, samples, measurements and vaccinations have already happened."""
    if day > timezone.localdate():
        raise ValidationError(_("This date is in the future."), code="future")


def not_before(born):
    """For a patient born on ``born``: nothing of their record happened before."""

    def check(day):
        if day < born:
            raise ValidationError(
                _("This date is before the patient's birth (%(date)s)."),
                params={"date": date_format(born, "SHORT_DATE_FORMAT")},
                code="before_birth",
            )

    return check


def bounded_by_birth(form, names, born):
    """The fields ``names`` of ``form`` refuse a date before ``born`` (and tell the
    browser's date picker so); nothing when the birth date is not known."""
    if born is None:
        return
    for name in names:
        form.fields[name].validators.append(not_before(born))
        form.fields[name].widget.attrs["min"] = born.isoformat()


class PastDates:
    """A form whose ``past_dates`` fields refuse a date after today, and with ``born`` (the
    patient's birth date) one before it (and tell the browser's date picker so)."""

    past_dates = ()

    def __init__(self, *args, born=None, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.past_dates:
            self.fields[name].validators.append(not_in_future)
            self.fields[name].widget.attrs["max"] = timezone.localdate().isoformat()
        bounded_by_birth(self, self.past_dates, born)


class DocumentUploadForm(PastDates, forms.Form):
    past_dates = ("care_date",)
    title = forms.CharField(label=_("Title"), max_length=200)
    # No category chosen in advance: an upload left as it was would be filed as a prescription.
    category = forms.ChoiceField(
        label=_("Category"), choices=[("", _("Choose a category")), *Document.Category.choices]
    )
    care_date = forms.DateField(label=_("Date of care"), widget=DateInput())
    file = forms.FileField(
        label=_("File"),
        help_text=_("PDF, JPEG, PNG or plain text, 20 MB at most."),
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,.txt"}),
    )
    # For care teams only (the patient's own upload form has no such field).
    confidential = widgets.confidential_box()

    def __init__(self, *args, by_care_team=False, **kwargs):
        super().__init__(*args, **kwargs)
        if not by_care_team:
            del self.fields["confidential"]


class DocumentFilterForm(forms.Form):
    category = forms.ChoiceField(
        label=_("Category"),
        choices=[("", _("All categories")), *Document.Category.choices],
        required=False,
        widget=widgets.Select(),
    )
    date_from = forms.DateField(label=_("From"), required=False, widget=DateInput())
    date_to = forms.DateField(label=_("To"), required=False, widget=DateInput())
    # The patient's care teams as (id, name), read once: a model choice field reads its
    # queryset again, through a server-side cursor, each time it lists or checks a choice.
    # The message for an unknown team is the model choice field's.
    team = forms.TypedChoiceField(
        label=_("Care team"),
        coerce=int,
        empty_value=None,
        required=False,
        widget=widgets.Select(),
        error_messages={"invalid_choice": forms.ModelChoiceField.default_error_messages["invalid_choice"]},
    )
    title = forms.CharField(label=_("Title contains"), max_length=100, required=False, widget=widgets.TextInput())

    def __init__(self, *args, teams, **kwargs):
        """``teams``: (pk, name) of the care teams the record's documents may come from."""
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", _("All care teams")), *teams]

    def fields_html(self):
        """The five fields as ``documents.html`` lays them out, each as
        ``{% form_field %}`` writes it (``portal.widgets.field_html``)."""
        return SafeString("\n      ".join(widgets.field_html(field) for field in self))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("date_from") and cleaned.get("date_to") and cleaned["date_from"] > cleaned["date_to"]:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned


class PrescriptionForm(forms.ModelForm):
    confidential = widgets.confidential_box()

    class Meta:
        model = Prescription
        fields = ["medication", "dosage", "frequency", "route", "start_date", "end_date", "renewable", "confidential"]
        widgets = {"start_date": DateInput(), "end_date": DateInput()}

    def __init__(self, *args, born=None, **kwargs):
        super().__init__(*args, **kwargs)
        bounded_by_birth(self, ("start_date", "end_date"), born)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start_date") and cleaned.get("end_date") and cleaned["end_date"] < cleaned["start_date"]:
            self.add_error("end_date", _("The end date is before the start date."))
        return cleaned


class LabReportForm(PastDates, forms.Form):
    past_dates = ("collected_on",)
    title = forms.CharField(label=_("Title"), max_length=200)
    collected_on = forms.DateField(label=_("Sample date"), widget=DateInput())
    csv_file = forms.FileField(label=_("Observations as CSV (optional)"), required=False)
    confidential = widgets.confidential_box()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["csv_file"].help_text = (
            _(
                "Columns: loinc, name, value, unit, low, high (or in French: loinc, nom, valeur, unité, min, max), "
                "separated by commas or semicolons. Replaces the rows below. "
                "At most %(rows)s rows and %(size)s: a larger file is refused, never cut."
            )
            % lab_csv_limits()
        )

    def clean_csv_file(self):
        upload = self.cleaned_data["csv_file"]
        if upload and upload.size > settings.LAB_CSV_MAX_BYTES:
            raise files.too_large(upload.size, settings.LAB_CSV_MAX_BYTES)
        return upload


def lab_csv_limits():
    """The limits of a lab CSV import, for people: {"rows": "1 000", "size": "1 Mo"}."""
    return {
        "rows": number_format(settings.LAB_CSV_MAX_ROWS, force_grouping=True),
        "size": files.megabytes(settings.LAB_CSV_MAX_BYTES),
    }


class ObservationForm(forms.ModelForm):
    class Meta:
        model = Observation
        fields = ["loinc", "name", "value", "unit", "low", "high"]

    def clean_loinc(self):
        """A LOINC code as the FHIR API checks it: its format and its check digit (a code
        typed wrong would name another test, or none)."""
        code = self.cleaned_data["loinc"].strip()
        if not loinc_is_valid(code):
            raise ValidationError(
                _("%(code)s is not a valid LOINC code (format or check digit)."), params={"code": code}, code="loinc"
            )
        return code


ObservationFormSet = forms.formset_factory(ObservationForm, extra=5, max_num=50)


class ProfileEntryForm(forms.ModelForm):
    """An entry of the medical profile; with ``by_care_team``, the care team's box that
    keeps it from the representatives (the patient's own forms have none)."""

    confidential = widgets.confidential_box()

    def __init__(self, *args, by_care_team=False, born=None, **kwargs):
        super().__init__(*args, **kwargs)  # ``born``: PastDates's, for the entries with a date
        if not by_care_team:
            del self.fields["confidential"]


class AllergyForm(ProfileEntryForm):
    class Meta:
        model = Allergy
        fields = ["substance", "reaction", "severity", "confidential"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Left as it is, the severity is "not known": nothing is chosen for the person.
        self.fields["severity"].choices = [("", _("Not known")), *Allergy.Severity.choices]


class ConditionForm(PastDates, ProfileEntryForm):
    past_dates = ("since",)

    class Meta:
        model = Condition
        fields = ["name", "since", "notes", "confidential"]
        widgets = {"since": DateInput()}


class VaccinationForm(PastDates, ProfileEntryForm):
    past_dates = ("date",)

    class Meta:
        model = Vaccination
        fields = ["vaccine", "date", "lot", "confidential"]
        widgets = {"date": DateInput()}


class MeasurementForm(PastDates, ProfileEntryForm):
    past_dates = ("measured_on",)

    class Meta:
        model = Measurement
        fields = ["kind", "value", "value2", "measured_on", "confidential"]
        widgets = {"measured_on": DateInput()}

    # What a person can measure, by kind (the diastolic pressure apart): beyond, a typing
    # error (5000 kg), which would also flatten the profile's trend chart.
    PLAUSIBLE = {
        Measurement.Kind.WEIGHT: (Decimal("0.3"), Decimal("500")),
        Measurement.Kind.HEIGHT: (Decimal("20"), Decimal("260")),
        Measurement.Kind.BLOOD_PRESSURE: (Decimal("40"), Decimal("300")),
        Measurement.Kind.GLUCOSE: (Decimal("0.1"), Decimal("10")),
    }
    PLAUSIBLE_DIASTOLIC = (Decimal("20"), Decimal("200"))

    def clean(self):
        cleaned = super().clean()
        kind, value, diastolic = cleaned.get("kind"), cleaned.get("value"), cleaned.get("value2")
        if kind == Measurement.Kind.BLOOD_PRESSURE and diastolic is None:
            self.add_error("value2", _("Give the diastolic pressure too."))
        if kind != Measurement.Kind.BLOOD_PRESSURE:
            cleaned["value2"] = diastolic = None
        for field, found, (low, high) in (
            ("value", value, self.PLAUSIBLE.get(kind, (Decimal("0.01"), Decimal("99999")))),
            ("value2", diastolic, self.PLAUSIBLE_DIASTOLIC),
        ):
            if found is not None and not low <= found <= high:
                self.add_error(field, _("Give a value between %(low)s and %(high)s.") % {
                    "low": number_format(low), "high": number_format(high)
                })  # fmt: skip
        if value is not None and diastolic is not None and diastolic >= value:
            self.add_error("value2", _("The diastolic pressure is below the systolic one: give the higher one first."))
        return cleaned


PROFILE_FORMS = {
    "allergy": AllergyForm,
    "condition": ConditionForm,
    "vaccination": VaccinationForm,
    "measurement": MeasurementForm,
}


class AccessReportForm(forms.Form):
    """ "I don't recognise this": an optional word for support about one access."""

    comment = forms.CharField(
        label=_("Comment (optional)"),
        max_length=200,
        required=False,
        help_text=_("Support reads it. Do not write any health information here."),
    )


class StopPrescriptionForm(forms.Form):
    stopped_on = forms.DateField(label=_("Stopped from"), widget=DateInput())
    reason = forms.CharField(label=_("Reason"), max_length=300, help_text=_("The patient reads it."))

    def __init__(self, *args, prescription, **kwargs):
        # From today, or from its first day when it has not begun yet (it can be stopped
        # before it starts: never taken).
        kwargs.setdefault("initial", {}).setdefault("stopped_on", max(timezone.localdate(), prescription.start_date))
        super().__init__(*args, **kwargs)
        self.prescription = prescription

    def clean_stopped_on(self):
        stopped_on = self.cleaned_data["stopped_on"]
        if stopped_on < self.prescription.start_date:
            raise forms.ValidationError(
                _("The prescription starts on %(date)s: stop it from that day or later.")
                % {"date": date_format(self.prescription.start_date, "SHORT_DATE_FORMAT")}
            )
        return stopped_on


class ReplacePrescriptionForm(PrescriptionForm):
    reason = forms.CharField(
        label=_("Reason for the new version"), max_length=300, help_text=_("The patient reads it.")
    )


class WithdrawForm(forms.Form):
    """Why a document or a profile entry is withdrawn."""

    reason = forms.CharField(label=_("Reason for withdrawing it"), max_length=300, help_text=_("The patient reads it."))


class ReplaceDocumentForm(DocumentUploadForm):
    reason = forms.CharField(
        label=_("Reason for the corrected version"), max_length=300, help_text=_("The patient reads it.")
    )


class CorrectObservationForm(forms.Form):
    """A corrected value; the unit and range stay as the laboratory gave them."""

    value = forms.DecimalField(label=_("Corrected value"), max_digits=12, decimal_places=4)
    reason = forms.CharField(label=_("Reason for the correction"), max_length=300, help_text=_("The patient reads it."))

    def __init__(self, *args, observation, **kwargs):
        super().__init__(*args, **kwargs)
        self.observation = observation
        if observation.unit:
            self.fields["value"].help_text = _("In %(unit)s.") % {"unit": observation.unit}

    def clean_value(self):
        value = self.cleaned_data["value"]
        if value == self.observation.value:
            raise ValidationError(_("This is the value already recorded."), code="unchanged")
        return value


class ProfileCommentForm(forms.Form):
    body = forms.CharField(
        label=_("Your comment"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The care teams read it. The entry itself stays as the professional wrote it."),
    )
