import datetime
import zoneinfo

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from agenda import services
from agenda.models import Appointment
from portal.careteams.models import CareTeam

# How far ahead an appointment may be booked (2199 is a typing slip, not a plan).
BOOKING_HORIZON = datetime.timedelta(days=2 * 366)


def paris_datetime(day: datetime.date, time: datetime.time) -> datetime.datetime:
    """The aware datetime a date and a wall-clock time mean in ``settings.TIME_ZONE``.
    A time that does not exist (the hour skipped in spring) or happens twice (the hour
    repeated in autumn) is refused: the clinician picks another, nobody guesses."""
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    naive = datetime.datetime.combine(day, time)
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        skipped = first.astimezone(datetime.UTC).astimezone(zone).replace(tzinfo=None) != naive
        raise forms.ValidationError(
            _("This time does not exist on that day (the clocks go forward): choose another.")
            if skipped
            else _("This time happens twice on that day (the clocks go back): choose another."),
            code="ambiguous_time",
        )
    return first


class AppointmentForm(forms.ModelForm):
    """Date and time as the clinician reads them on the wall clock, in Europe/Paris."""

    day = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    time = forms.TimeField(label=_("Time"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))

    class Meta:
        model = Appointment
        fields = [
            "day",
            "time",
            "duration_minutes",
            "mode",
            "place",
            "video_url",
            "with_whom",
            "instructions",
            "confidential",
        ]
        widgets = {
            "mode": forms.RadioSelect,
            "instructions": forms.Textarea(attrs={"rows": 4}),
            "duration_minutes": forms.NumberInput(attrs={"min": 5, "max": 480, "step": 5}),
        }
        help_texts = {
            "place": _("The address, building, floor or desk: required for an appointment in person."),
            "video_url": _("The https address the patient opens at the time of the teleconsultation."),
            "with_whom": _("e.g. Dr Martin, the nurse, the imaging desk."),
            "instructions": _("What to bring, whether to come fasting… The patient reads it."),
            "confidential": _(
                "The patient's parents or legal representatives will not see it, be told of it or be reminded of it "
                "(a minor's confidential care)."
            ),
        }

    field_order = [
        "day", "time", "duration_minutes", "mode", "place", "video_url", "with_whom", "instructions", "confidential",
    ]  # fmt: skip

    def __init__(self, *args, teams=None, patient=None, **kwargs):
        """``teams``: when booking, the clinician's teams the appointment may be made
        in (those with an active link to the patient), and ``patient``, whom it is with;
        a change keeps its team and patient."""
        super().__init__(*args, **kwargs)
        # The model field's minimum (0, a positive number) would override the widget's; its
        # validators (5 to 480) run on the form's field, before clean() books with the value.
        duration = self.fields["duration_minutes"]
        duration.widget.attrs.update(min=5, max=480)
        duration.validators = [*duration.validators, MinValueValidator(5), MaxValueValidator(8 * 60)]
        self.patient = patient or (self.instance.patient if self.instance.pk else None)
        if teams is not None:
            self.fields["team"] = forms.ModelChoiceField(
                label=_("Care team"), queryset=teams, empty_label=None, initial=teams.first()
            )
            self.order_fields(["team", *self.field_order])
        if self.instance.pk:
            local = self.instance.local_start
            self.initial.setdefault("day", local.date())
            self.initial.setdefault("time", local.time().replace(second=0, microsecond=0))
        if self.is_bound and BUSY_OK in self.data:  # the box shown after a warning, sent back
            self.fields[BUSY_OK] = _busy_ok_field()

    def clean_video_url(self):
        url = self.cleaned_data["video_url"]
        if url and not url.lower().startswith("https://"):
            raise forms.ValidationError(_("The teleconsultation link must start with https://."), code="https")
        return url

    def clean(self):
        data = super().clean()
        day, time = data.get("day"), data.get("time")
        if day and time:
            try:
                data["starts_at"] = paris_datetime(day, time)
            except forms.ValidationError as error:
                self.add_error("time", error)
            else:
                if data["starts_at"] < timezone.now() and (
                    not self.instance.pk or data["starts_at"] != self.instance.starts_at
                ):
                    self.add_error("day", _("This date and time have passed."))
                elif data["starts_at"] > timezone.now() + BOOKING_HORIZON:
                    self.add_error("day", _("An appointment is booked at most two years ahead."))
        self._refuse_a_second_booking(data)
        self._warn_of_a_busy_professional(data)
        mode = data.get("mode")
        if mode == Appointment.Mode.VIDEO and not data.get("video_url") and "video_url" not in self.errors:
            self.add_error("video_url", _("Give the teleconsultation link."))
        if mode == Appointment.Mode.IN_PERSON and not data.get("place") and "place" not in self.errors:
            self.add_error("place", _("Give the place of the appointment."))
        return data

    def _warn_of_a_busy_professional(self, data):
        """The same professional (``with_whom``, as the team writes it) already sees another
        patient of the team at an overlapping time: said, and booked only once the box that
        then appears is ticked (a group session, two rooms). Who the other patient is is
        not said."""
        team = data.get("team") or (self.instance.team if self.instance.pk else None)
        start, minutes, who = data.get("starts_at"), data.get("duration_minutes"), data.get("with_whom")
        if data.get(BUSY_OK) or team is None or start is None or not minutes or not who or self.errors:
            return
        busy = services.busy_with_another_patient(
            team=team, with_whom=who, patient=self.patient, starts_at=start, duration_minutes=minutes,
            exclude=self.instance.pk,
        )  # fmt: skip
        if busy is not None:
            self.fields[BUSY_OK] = _busy_ok_field()
            self.add_error(BUSY_OK, busy)

    def _refuse_a_second_booking(self, data):
        """The patient already booked with the team at an overlapping time: said, not
        booked (the service checks again under a lock, see ``services.clash``)."""
        team = data.get("team") or (self.instance.team if self.instance.pk else None)
        start, minutes = data.get("starts_at"), data.get("duration_minutes")
        if self.patient is None or team is None or start is None or not minutes:
            return
        refusal = services.clash(
            patient=self.patient, team=team, starts_at=start, duration_minutes=minutes, exclude=self.instance.pk
        )
        if refusal is not None:
            self.add_error(None, refusal)

    def details(self) -> dict:
        """The cleaned fields the services take, beside ``starts_at`` and the duration."""
        data = self.cleaned_data
        return {
            name: data[name] for name in ("mode", "place", "video_url", "with_whom", "instructions", "confidential")
        }


BUSY_OK = "busy_ok"


def _busy_ok_field():
    # No colon in it: the error summary writes « label : error ».
    return forms.BooleanField(label=_("Book it anyway (both appointments are kept)"), required=False)


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The patient reads it."),
    )


class PatientCancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (optional)"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The care team reads it."),
    )


class RescheduleForm(forms.Form):
    message = forms.CharField(
        label=_("Your message to the care team"),
        max_length=5_000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("Say which days and times suit you."),
    )


class FeedForm(forms.Form):
    show_details = forms.BooleanField(
        label=_("Show the care team, the place and the instructions in my calendar"),
        required=False,
        help_text=_(
            "Off: each appointment shows as “Rendez-vous – Carnet” and its time only. Whoever sees your "
            "calendar (a shared or work calendar) would see the details."
        ),
    )


class AgendaDayForm(forms.Form):
    """The day (or a day of the week) shown, and the team, from the query string:
    dates and a team number carry no health data."""

    team = forms.ModelChoiceField(label=_("Care team"), queryset=CareTeam.objects.none(), required=False)
    day = forms.DateField(label=_("Date"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        self.fields["team"].empty_label = None
