from django import forms
from django.utils.translation import gettext_lazy as _

from records.export_builders import SECTIONS, observations_between
from records.models import Export


class ExportRequestForm(forms.Form):
    kind = forms.ChoiceField(label=_("What to export"), choices=Export.Kind.choices, widget=forms.RadioSelect)
    sections = forms.MultipleChoiceField(
        label=_("Sections of the health summary"),
        choices=[(key, label) for key, (label, _function, _template) in SECTIONS.items()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("For the health summary only."),
    )
    lab_from = forms.DateField(
        label=_("Lab results from"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("For the lab results PDF only. Leave both dates empty for all the results."),
    )
    lab_to = forms.DateField(
        label=_("Lab results until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    conversation = forms.ModelChoiceField(
        label=_("Conversation"),
        queryset=None,
        required=False,
        empty_label=_("Choose a conversation"),
        help_text=_("For a conversation PDF only."),
    )

    def __init__(self, *args, conversations, observations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["conversation"].queryset = conversations
        self.observations = observations
        self.fields["sections"].initial = list(SECTIONS)

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == Export.Kind.SUMMARY and not data.get("sections"):
            self.add_error("sections", _("Choose at least one section."))
        if kind == Export.Kind.CONVERSATION and not data.get("conversation"):
            self.add_error("conversation", _("Choose the conversation to export."))
        if kind == Export.Kind.LAB_RESULTS and not self.has_error("lab_from") and not self.has_error("lab_to"):
            self._clean_lab_period(data.get("lab_from"), data.get("lab_to"))
        return data

    def _clean_lab_period(self, start, end):
        if start and end and start > end:
            self.add_error("lab_to", _("The end of the period is before its start."))
        elif not observations_between(self.observations, start, end).exists():
            if start or end:
                self.add_error("lab_from", _("You have no lab results in this period."))
            else:
                self.add_error("kind", _("You have no lab results yet."))

    def options(self) -> dict:
        """What the export needs to know: section keys, a conversation id or a period, nothing else."""
        kind = self.cleaned_data["kind"]
        if kind == Export.Kind.SUMMARY:
            return {"sections": [key for key in SECTIONS if key in self.cleaned_data["sections"]]}
        if kind == Export.Kind.CONVERSATION:
            return {"conversation": self.cleaned_data["conversation"].pk}
        if kind == Export.Kind.LAB_RESULTS:
            period = {"from": self.cleaned_data["lab_from"], "to": self.cleaned_data["lab_to"]}
            return {key: day.isoformat() for key, day in period.items() if day}
        return {}
