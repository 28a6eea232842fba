from django import forms
from django.utils.translation import gettext_lazy as _

from records.models import Document


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class DocumentUploadForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    category = forms.ChoiceField(label=_("Category"), choices=Document.Category.choices)
    care_date = forms.DateField(label=_("Date of care"), widget=DateInput())
    file = forms.FileField(
        label=_("File"),
        help_text=_("PDF, JPEG, PNG or plain text, 20 MB at most."),
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,.txt"}),
    )


class DocumentFilterForm(forms.Form):
    category = forms.ChoiceField(
        label=_("Category"), choices=[("", _("All")), *Document.Category.choices], required=False
    )
    date_from = forms.DateField(label=_("From"), required=False, widget=DateInput())
    date_to = forms.DateField(label=_("To"), required=False, widget=DateInput())
    team = forms.ModelChoiceField(label=_("Care team"), queryset=None, required=False, empty_label=_("All"))
    title = forms.CharField(label=_("Title contains"), max_length=100, required=False)

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("date_from") and cleaned.get("date_to") and cleaned["date_from"] > cleaned["date_to"]:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned
