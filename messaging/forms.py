import functools

from django import forms
from django.conf import settings
from django.db.models import fields as model_fields
from django.utils.functional import lazy
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext_lazy as _

from messaging.models import Conversation, ReplyTemplate
from messaging.services import check_attachments
from portal import widgets
from portal.accounts.models import User
from records import files

BODY_MAX_LENGTH = 10_000


class MessageBodyField(forms.CharField):
    # Not restored by the browser on Back: a message sent, then Back and Send, would go twice.
    widget = widgets.Textarea(attrs={"rows": 6, "autocomplete": "off"})

    def __init__(self, **kwargs):
        super().__init__(label=_("Message"), max_length=BODY_MAX_LENGTH, **kwargs)


class MultipleFileInput(widgets.ClearableFileInput):
    allow_multiple_selected = True


def attachments_help() -> str:
    """The attachments field's help, in the reader's language, with the limits the settings
    give now (worded once per language and limits: every reply form shows it)."""
    limits = settings.MESSAGE_ATTACHMENTS_MAX_COUNT, settings.MESSAGE_ATTACHMENTS_MAX_BYTES, settings.DOCUMENT_MAX_BYTES
    return _attachments_help(get_language(), *limits)


@functools.lru_cache(maxsize=32)
def _attachments_help(language, most, total, each) -> str:  # language: the cache's key, and the active one
    return ngettext(
        "Up to %(most)d file, %(total)s in all: PDF, JPEG, PNG or plain text, %(each)s at most each.",
        "Up to %(most)d files, %(total)s in all: PDF, JPEG, PNG or plain text, %(each)s at most each.",
        most,
    ) % {"most": most, "total": files.megabytes(total), "each": files.megabytes(each)}


class AttachmentsField(forms.FileField):
    """Zero or more files, within the message's count and total; each is checked by
    content here (one at a time) and again when the message is sent."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,.txt"}))
        # Lazy: worded in the reader's language, with the limits the settings give then.
        super().__init__(label=_("Attachments"), required=False, help_text=lazy(attachments_help, str)(), **kwargs)

    def clean(self, data, initial=None):
        items = (
            [super(AttachmentsField, self).clean(item, initial) for item in data if item]
            if isinstance(data, (list, tuple))
            else ([data] if data else [])
        )
        check_attachments(items)
        for upload in items:  # checked here too, so the error shows with the form's others
            files.read_upload(upload)
            upload.seek(0)
        return items


class ReplyForm(forms.Form):
    body = MessageBodyField(error_messages={"required": _("Write a message.")})
    attachments = AttachmentsField()


class NewConversationForm(forms.Form):
    team = forms.ModelChoiceField(label=_("Care team"), queryset=None)
    kind = forms.ChoiceField(label=_("Type"), choices=Conversation.Kind.choices)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    body = MessageBodyField(error_messages={"required": _("Write a message.")})
    attachments = AttachmentsField()
    # For care teams only: set before the first message, so that no representative is ever
    # shown or told of it (marked afterwards, they would have been).
    confidential = widgets.confidential_box()

    # The kinds about a part of the record: offered to a representative who acts on it.
    KIND_PARTS = {Conversation.Kind.RENEWAL: "prescriptions", Conversation.Kind.RESCHEDULE: "manage"}

    def __init__(self, *args, teams, by_care_team=False, parts=None, **kwargs):
        """``parts``: what the patient-side author may act on in the record (all, for a
        care team)."""
        super().__init__(*args, **kwargs)
        if not by_care_team:
            del self.fields["confidential"]
        if by_care_team:  # a renewal or a move is the patient's request, never the team's
            self.fields["kind"].choices = [
                (kind, label) for kind, label in Conversation.Kind.choices if kind not in self.KIND_PARTS
            ]
        elif parts is not None:
            self.fields["kind"].choices = [
                (kind, label)
                for kind, label in Conversation.Kind.choices
                if kind not in self.KIND_PARTS or self.KIND_PARTS[kind] in parts
            ]
        self.fields["team"].queryset = teams
        self.fields["team"].empty_label = model_fields.BLANK_CHOICE_LABEL  # « Choisissez… »: no team chosen for them
        if by_care_team and not self.is_bound:
            # A professional writes for their team: their only one is chosen for them (a
            # patient chooses, among theirs, whom they write to).
            only = list(teams[:2])
            if len(only) == 1:
                self.initial.setdefault("team", only[0].pk)
        self.fields["team"].error_messages["invalid_choice"] = _(
            "You cannot write to this care team: the link is not active."
        )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        label=_("Assign to"), queryset=None, required=False, empty_label=_("Nobody"), widget=widgets.Select()
    )

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
