from django import forms
from django.utils.translation import gettext_lazy as _

from messaging.models import Conversation, ReplyTemplate
from portal.accounts.models import User
from records import files


class MessageBodyField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 6})

    def __init__(self, **kwargs):
        super().__init__(label=_("Message"), max_length=10_000, **kwargs)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Zero or more files; each is checked by content when the message is sent."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,.txt"}))
        super().__init__(
            label=_("Attachments"),
            required=False,
            help_text=_("PDF, JPEG, PNG or plain text, 20 MB at most each."),
            **kwargs,
        )

    def clean(self, data, initial=None):
        items = (
            [super(AttachmentsField, self).clean(item, initial) for item in data if item]
            if isinstance(data, (list, tuple))
            else ([data] if data else [])
        )
        for upload in items:  # checked here too, so the error shows with the form's others
            files.read_upload(upload)
            upload.seek(0)
        return items


class ReplyForm(forms.Form):
    body = MessageBodyField(error_messages={"required": _("Write a message.")})
    attachments = AttachmentsField()


class NewConversationForm(forms.Form):
    team = forms.ModelChoiceField(label=_("Care team"), queryset=None, empty_label=None)
    kind = forms.ChoiceField(label=_("Type"), choices=Conversation.Kind.choices)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    body = MessageBodyField(error_messages={"required": _("Write a message.")})
    attachments = AttachmentsField()

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        self.fields["team"].error_messages["invalid_choice"] = _(
            "You cannot write to this care team: the link is not active."
        )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(label=_("Assign to"), queryset=None, required=False, empty_label=_("Nobody"))

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = team.members.filter(is_active=True, role=User.Role.CLINICIAN).order_by(
            "last_name", "first_name"
        )


class ReplyTemplateForm(forms.ModelForm):
    class Meta:
        model = ReplyTemplate
        fields = ["team", "title", "body"]
        labels = {"team": _("Care team")}
        widgets = {"body": forms.Textarea(attrs={"rows": 5})}

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        self.fields["team"].empty_label = None
