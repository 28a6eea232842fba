"""Form widgets written as Django's own templates write them (the same markup and
attributes, ``aria-*`` from the bound field included) without rendering a template per
widget, attribute and option: a form on a page people load often (a conversation's reply
form, its assignment list) otherwise costs more than the rest of the page's content.
tests/portal/test_widgets.py holds each equal to Django's rendering."""

from django import forms
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from portal.rows import escaped


def attributes(attrs):
    """Django's ``django/forms/widgets/attrs.html``, without a template."""
    return SafeString(
        "".join(
            f" {escaped(name)}" if value is True else f' {escaped(name)}="{escaped(value)}"'
            for name, value in attrs.items()
            if value is not False
        )
    )


class _Direct:
    def render(self, name, value, attrs=None, renderer=None):
        html = self.html(self.get_context(name, value, attrs)["widget"])
        # None: a case the direct markup does not cover, written by Django's template.
        return super().render(name, value, attrs, renderer) if html is None else html


class Input(_Direct):
    """Django's ``input.html`` (text, date, checkbox…), to mix with a widget class."""

    def html(self, widget):
        value = "" if widget["value"] is None else f' value="{escaped(widget["value"])}"'
        return SafeString(
            f'<input type="{escaped(widget["type"])}" name="{escaped(widget["name"])}"{value}'
            f"{attributes(widget['attrs'])}>"
        )


class TextInput(Input, forms.TextInput):
    pass


class DateInput(Input, forms.DateInput):
    pass


class DecimalInput(TextInput):
    """A number with decimals, as people type it: a text box with the phone's decimal
    keypad. A browser's number box takes "5,4" as 54 in some languages, without a word;
    this one sends what was typed, and ``decimal_comma`` reads the comma as the point."""

    def __init__(self, attrs=None):
        super().__init__({"inputmode": "decimal", "autocomplete": "off", **(attrs or {})})


class CheckboxInput(Input, forms.CheckboxInput):
    pass


class Textarea(_Direct, forms.Textarea):
    def html(self, widget):
        return SafeString(
            f'<textarea name="{escaped(widget["name"])}"{attributes(widget["attrs"])}>\n'
            f"{escaped(widget['value'] or '')}</textarea>"
        )


class ClearableFileInput(_Direct, forms.ClearableFileInput):
    def html(self, widget):
        if widget["is_initial"]:  # a file already there, with its "clear" box
            return None
        return SafeString(
            f'<input type="{escaped(widget["type"])}" name="{escaped(widget["name"])}"{attributes(widget["attrs"])}>'
        )


class Select(forms.Select):
    def render(self, name, value, attrs=None, renderer=None):
        """The options straight from the choices: what ``optgroups`` and ``create_option``
        work out (the first matching option selected), without a dictionary and a template
        per option. Groups and multiple choice: Django's template."""
        choices = list(self.choices)
        if self.allow_multiple_selected or any(isinstance(label, (list, tuple)) for _value, label in choices):
            return super().render(name, value, attrs, renderer)
        values, chosen, options = self.format_value(value), False, []
        for option_value, label in choices:
            option_value = "" if option_value is None else str(option_value)
            selected = not chosen and option_value in values
            chosen |= selected
            mark = " selected" if selected else ""
            options.append(f'\n  <option value="{escaped(option_value)}"{mark}>{escaped(label)}</option>\n')
        select_attributes = attributes(self.build_attrs(self.attrs, attrs))
        return SafeString(f'<select name="{escaped(name)}"{select_attributes}>{"".join(options)}\n</select>')


_REQUIRED = ' <span class="required" aria-hidden="true">*</span>'


def field_html(field):
    """A bound field as every form lays it out (``{% form_field %}``): its label (with a
    mark when required), its help (in a div: a help text may hold a list, the password
    rules, which a p cannot), its errors, then its widget; the help and the errors with the
    ids Django's ``aria-describedby`` points to. Written in Python: an include per field
    cost more than the rest of a list page's form."""
    errors, help_text, auto_id = field.errors, field.help_text, field.auto_id
    help_html = f'<div class="help" id="{escaped(auto_id)}_helptext">{help_text}</div>' if help_text else ""  # |safe
    errors_html = (
        f'<ul class="errorlist" id="{escaped(auto_id)}_error">{"".join(f"<li>{escaped(e)}</li>" for e in errors)}</ul>'
        if errors
        else ""
    )
    return SafeString(
        f'<div class="field{" field-error" if errors else ""}">\n'
        f'  <label for="{escaped(field.id_for_label)}">{escaped(field.label)}'
        f"{_REQUIRED if field.field.required else ''}</label>\n"
        f"  {help_html}\n  {errors_html}\n  {field}\n</div>\n"
    )


def confidential_box():
    """The care team's box that keeps an item (a document, a result, a prescription, a
    profile entry, a conversation) from the patient's representatives: one field, one
    wording, on every form that has it."""
    return forms.BooleanField(
        label=_("Confidential from the representatives"),
        required=False,
        help_text=_("A minor's care kept from their parents: never shown to the record's representatives."),
    )


# Empty forms' fields, written once: (template, form class, init, language) -> HTML.
_EMPTY_FORMS_KEPT = 256
_empty_forms: dict = {}


@receiver(setting_changed)
def _forget_empty_forms(**kwargs):
    _empty_forms.clear()  # any setting may change what a form writes (a test's: a limit in a help)


def empty_form_html(template_name: str, form_class, **init) -> str:
    """``template_name`` rendered with an empty ``form_class(**init)`` as ``form``: the same
    HTML at every visit for the same form, ``init`` (hashable values) and language, written
    once per process (up to 256 versions kept). For a form shown empty only: what a person
    chose or typed is written anew, never kept (it may be health data)."""
    key = (template_name, form_class, tuple(sorted(init.items())), get_language())
    html = _empty_forms.get(key)
    if html is None:
        html = render_to_string(template_name, {"form": form_class(**init)})
        if len(_empty_forms) >= _EMPTY_FORMS_KEPT:  # start again: what is in use comes back
            _empty_forms.clear()
        _empty_forms[key] = html
    return html
