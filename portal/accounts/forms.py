from allauth.account.forms import LoginForm as AllauthLoginForm
from django import forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import User


class LoginForm(AllauthLoginForm):
    """allauth's sign-in form without its "Forgot your password?" help text: the page
    offers that link once, under the form."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password"].help_text = ""


class CodeForm(forms.Form):
    """The code of one kind of second factor; each kind has its own form on the page."""

    LABELS = {
        "app": _("Code from your authenticator app"),
        "email": _("Code received by email"),
        "backup": _("Backup code"),
    }
    HELP = {
        "app": _("The 6 digits your app shows now."),
        "email": _("The 6 digits of the email we sent you."),
        "backup": _("One of the codes you saved when you set up your second factor. Each works once."),
    }

    code = forms.CharField(
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autocapitalize": "off"}),
    )

    def __init__(self, *args, kind, **kwargs):
        # Several forms on one page: ids per kind, so each label points at its own field.
        super().__init__(*args, auto_id=f"id_{kind}_%s", **kwargs)
        self.kind = kind
        self.fields["code"].label = self.LABELS[kind]
        self.fields["code"].help_text = self.HELP[kind]
        if kind != "backup":
            self.fields["code"].widget.attrs["inputmode"] = "numeric"


class EnrolCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class PasskeyNameForm(forms.Form):
    name = forms.CharField(
        label=_("Name of the passkey"),
        max_length=64,
        help_text=_("Something that tells you which device holds it, such as “Phone” or “Office computer”."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


def clean_new_address(email: str) -> str:
    """An address for a new login: not one another account already uses."""
    from portal.accounts.services import address_in_use

    email = email.strip().lower()
    if address_in_use(email):
        raise forms.ValidationError(
            _("This address is already used by another account: each person needs their own address.")
        )
    return email


class InvitePatientForm(forms.Form):
    email = forms.EmailField(label=_("Patient's email address"), widget=forms.EmailInput(attrs={"autocomplete": "off"}))

    def clean_email(self):
        return clean_new_address(self.cleaned_data["email"])


class NewPasswordForm(forms.Form):
    """A new account's password, typed twice, checked by the password validators against the
    account's address (``email``): the invitations' forms, a patient's and a helper's."""

    password1 = forms.CharField(
        label=_("Choose a password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password (again)"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args, email="", **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        data = super().clean()
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ."))
        elif first:
            try:
                password_validation.validate_password(first, User(email=self.email))
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data


class AcceptInvitationForm(NewPasswordForm):
    """The invitee's proof (a patient's birth date, or the code support staff gave) and password."""

    birth_date = forms.DateField(
        label=_("Your birth date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    code = forms.CharField(
        label=_("Verification code"),
        max_length=20,
        help_text=_("The 8-digit code our support team gave you by phone or in person (not by email)."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    field_order = ["birth_date", "code", "password1", "password2"]

    def __init__(self, *args, needs_code=False, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["birth_date" if needs_code else "code"]
        self.proof_field = "code" if needs_code else "birth_date"

    @property
    def proof(self):
        """The bound field of the invitee's proof, whichever it is."""
        return self[self.proof_field]
