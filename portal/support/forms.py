from django import forms
from django.utils.translation import gettext_lazy as _


class ActionForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required. Kept in the support audit trail; the account holder does not see it."),
        error_messages={"required": _("Give the reason for this action.")},
    )
    request_key = forms.UUIDField(widget=forms.HiddenInput)

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Give the reason for this action."))
        return reason
