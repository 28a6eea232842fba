from django import forms
from django.utils.translation import gettext_lazy as _

from records.export_builders import SECTIONS
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
    conversation = forms.ModelChoiceField(
        label=_("Conversation"),
        queryset=None,
        required=False,
        empty_label=_("Choose a conversation"),
        help_text=_("For a conversation PDF only."),
    )

    def __init__(self, *args, conversations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["conversation"].queryset = conversations
        self.fields["sections"].initial = list(SECTIONS)

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == Export.Kind.SUMMARY and not data.get("sections"):
            self.add_error("sections", _("Choose at least one section."))
        if kind == Export.Kind.CONVERSATION and not data.get("conversation"):
            self.add_error("conversation", _("Choose the conversation to export."))
        return data

    def options(self) -> dict:
        """What the export needs to know: section keys or a conversation id, nothing else."""
        kind = self.cleaned_data["kind"]
        if kind == Export.Kind.SUMMARY:
            return {"sections": [key for key in SECTIONS if key in self.cleaned_data["sections"]]}
        if kind == Export.Kind.CONVERSATION:
            return {"conversation": self.cleaned_data["conversation"].pk}
        return {}
