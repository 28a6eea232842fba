"""Form widgets written as Django's own templates write them (the same markup and
attributes, ``aria-*`` from the bound field included) without rendering a template per
widget, attribute and option: a form on a page people load often (a conversation's reply
form, its assignment list) otherwise costs more than the rest of the page's content.
tests/portal/test_widgets.py holds each equal to Django's rendering."""

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _


def attributes(attrs):
    """Django's ``django/forms/widgets/attrs.html``, without a template."""
    return format_html_join(
        "",
        "{}",
        (
            (format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value),)
            for name, value in attrs.items()
            if value is not False
        ),
    )


class _Direct:
    def render(self, name, value, attrs=None, renderer=None):
        html = self.html(self.get_context(name, value, attrs)["widget"])
        # None: a case the direct markup does not cover, written by Django's template.
        return super().render(name, value, attrs, renderer) if html is None else html


class Input(_Direct):
    """Django's ``input.html`` (text, date, checkbox…), to mix with a widget class."""

    def html(self, widget):
        value = "" if widget["value"] is None else format_html(' value="{}"', widget["value"])
        return format_html(
            '<input type="{}" name="{}"{}{}>', widget["type"], widget["name"], value, attributes(widget["attrs"])
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
        return format_html(
            '<textarea name="{}"{}>\n{}</textarea>', widget["name"], attributes(widget["attrs"]), widget["value"] or ""
        )


class ClearableFileInput(_Direct, forms.ClearableFileInput):
    def html(self, widget):
        if widget["is_initial"]:  # a file already there, with its "clear" box
            return None
        return format_html('<input type="{}" name="{}"{}>', widget["type"], widget["name"], attributes(widget["attrs"]))


class Select(_Direct, forms.Select):
    def html(self, widget):
        parts = []
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                return None  # groups: Django's template
            for option in options:
                parts.append(
                    format_html(
                        '\n  <option value="{}"{}>{}</option>\n',
                        option["value"],
                        attributes(option["attrs"]),
                        option["label"],
                    )
                )
        return format_html(
            '<select name="{}"{}>{}\n</select>',
            widget["name"],
            attributes(widget["attrs"]),
            format_html_join("", "{}", ((part,) for part in parts)),
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
