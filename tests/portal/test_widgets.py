"""portal.widgets write what Django's widget templates write."""

import datetime

import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import Context, Template
from django.utils import translation

from portal import widgets
from portal.accounts.models import User
from tests.factories import ClinicianFactory

CHOICES = [("", "Nobody"), ("a", "Ann <b> & « co »"), ("2", "Two"), ('x"y', "Quote")]


class MultipleDjango(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleDirect(widgets.ClearableFileInput):
    allow_multiple_selected = True


def form_class(direct):
    text = widgets.Textarea if direct else forms.Textarea
    files = MultipleDirect if direct else MultipleDjango
    select = widgets.Select if direct else forms.Select

    class Form(forms.Form):
        body = forms.CharField(max_length=100, widget=text(attrs={"rows": 6}), help_text="Help <i>")
        note = forms.CharField(required=False, widget=text(attrs={"disabled": True, "data-x": False}))
        attachments = forms.FileField(required=False, widget=files(attrs={"accept": ".pdf"}), help_text="Files")
        single = forms.FileField(
            required=False, widget=(widgets.ClearableFileInput if direct else forms.ClearableFileInput)()
        )
        choice = forms.ChoiceField(choices=CHOICES, widget=select(attrs={"class": "c"}))
        person = forms.ModelChoiceField(queryset=None, required=False, empty_label="Nobody", widget=select())

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.fields["person"].queryset = User.objects.order_by("pk")

    return Form


class Stored:
    url = "/media/x.pdf"

    def __str__(self):
        return "x.pdf"


CASES = [
    ((), {}),
    (({"body": "Bonjour <b>&</b>\n\nligne", "choice": "a", "person": ""}, {}), {}),
    (({"body": "", "choice": "nope", "person": "999"}, {}), {}),  # errors: aria-invalid
    (({"body": "x" * 101, "choice": 'x"y'}, {"attachments": SimpleUploadedFile("a.pdf", b"%PDF")}), {}),
    ((), {"initial": {"body": "From a template", "choice": "2", "single": Stored()}}),  # a file already there
]


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "kwargs"), CASES)
def test_the_direct_widgets_write_what_django_writes(args, kwargs):
    clinician = ClinicianFactory(first_name="Élodie", last_name="O'Hara <x>")
    data = {**args[0], "person": str(clinician.pk)} if args and args[0].get("person") == "" else None
    args = (data, args[1]) if data else args
    django_form, direct_form = form_class(False)(*args, **kwargs), form_class(True)(*args, **kwargs)
    if args:
        assert not django_form.is_valid() or django_form.is_valid() == direct_form.is_valid()
        direct_form.is_valid()
    for name in django_form.fields:
        assert str(direct_form[name]) == str(django_form[name]), name


def test_the_select_writes_its_options_as_django_does():
    """The select's options straight from its choices: Django's markup, the first matching
    choice selected, labels and values escaped, attributes kept; groups and multiple choice
    go through Django's template."""
    choices = [("", "Toutes"), ("imaging", "Imagerie"), (3, "Cabinet <d'essai> & co"), ("3", "bis"), (None, "-")]
    grouped = [*choices[:2], ("Équipes", [(4, "A <b>"), (5, "B")])]
    direct_multiple = type("SelectMultiple", (widgets.Select, forms.SelectMultiple), {})
    cases = ((choices, widgets.Select, forms.Select), (grouped, widgets.Select, forms.Select),
             (choices, direct_multiple, forms.SelectMultiple))  # fmt: skip
    for values, direct_class, django_class in cases:
        for value in (None, "", "imaging", 3, "3", "nope", ["imaging"], ["3", "imaging"], 4):
            for attrs in ({"id": "id_x"}, {"id": "id_x", "aria-invalid": "true", "aria-describedby": "id_x_error"}):
                direct = direct_class(choices=values, attrs={"class": "c", "data-x": 'a"b'})
                plain = django_class(choices=values, attrs={"class": "c", "data-x": 'a"b'})
                assert direct.render("team", value, attrs) == plain.render("team", value, attrs), (value, attrs)


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"name": 'Lé<a> "x"', "ins": "123", "birth_date": "2020-13-01", "unread": "on"},
        {"birth_date": "2020-01-02", "new_results": "on"},
    ],
)
def test_the_patient_search_form_writes_what_django_writes(data):
    """The clinician's patient search (on every page of the patient list) uses the direct
    inputs: text, date and checkbox, filled, refused and empty, as Django's own write them."""
    from portal.careteams.forms import PatientSearchForm

    direct, plain = PatientSearchForm(data), PatientSearchForm(data)
    for field in plain.fields.values():
        django_class = next(cls for cls in type(field.widget).__mro__ if cls.__module__ == "django.forms.widgets")
        options = {"format": field.widget.format} if isinstance(field.widget, forms.DateInput) else {}
        attrs = {**field.widget.attrs, "type": field.widget.input_type}
        field.widget = django_class(attrs=attrs, **options)
    assert direct.is_valid() == plain.is_valid()
    for name in plain.fields:
        assert type(direct.fields[name].widget).__module__ == "portal.widgets"
        assert str(direct[name]) == str(plain[name]), name


# What templates/includes/field.html wrote, before {% form_field %} (portal.widgets.field_html)
# replaced it on every form: the markup the pages' forms, styles and tests were made for.
FIELD_INCLUDE = Template(
    """<div class="field{% if field.errors %} field-error{% endif %}">
  <label for="{{ field.id_for_label }}">{{ field.label }}{% if field.field.required %} <span class="required" aria-hidden="true">*</span>{% endif %}</label>
  {% if field.help_text %}<div class="help" id="{{ field.auto_id }}_helptext">{{ field.help_text|safe }}</div>{% endif %}
  {% if field.errors %}<ul class="errorlist" id="{{ field.auto_id }}_error">{% for error in field.errors %}<li>{{ error }}</li>{% endfor %}</ul>{% endif %}
  {{ field }}
</div>
"""
)


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_field_is_written_as_the_include_wrote_it(language):
    """A field left empty, filled, refused (two errors, hostile text), required or with a
    help text holding a list, in both languages: the include's markup, whitespace included."""
    from records.forms import DocumentFilterForm, DocumentUploadForm

    def refuse(value):
        raise forms.ValidationError("Refusé <script>")

    class Form(forms.Form):
        password1 = forms.CharField(help_text="<ul><li>12 caractères au moins</li></ul>")
        name = forms.CharField(label="Nom <b>", min_length=5, validators=[refuse])

    teams = [(1, "Cabinet <d'essai>"), (2, "Équipe & co")]
    cases = [
        DocumentFilterForm(initial={}, teams=teams),
        DocumentFilterForm(initial={"category": "imaging", "team": 2, "title": "<b>genou</b>"}, teams=teams),
        DocumentFilterForm(
            {"date_from": "2026-12-01", "date_to": "2026-01-01", "team": "0", "title": "x"}, teams=teams
        ),
        DocumentUploadForm({"title": ""}, by_care_team=True),
        Form(),
        Form({"password1": "x", "name": "a<b"}),
    ]
    with translation.override(language):
        for form in cases:
            if form.is_bound:
                form.is_valid()
            for field in form:
                assert widgets.field_html(field) == FIELD_INCLUDE.render(Context({"field": field})), field.name
        assert cases[2].errors["team"] and cases[2].errors["date_to"] and len(cases[5].errors["name"]) == 2
        assert str(cases[2].fields_html()).count('<div class="field') == 5


@pytest.mark.parametrize("value", [None, "", datetime.date(2026, 3, 1), "2026-13-01"])
def test_the_records_date_box_writes_what_djangos_writes(value):
    """records.forms.DateInput (the date picker of the records' forms) is a direct input."""
    from records.forms import DateInput

    class DjangoDate(forms.DateInput):
        input_type = "date"

    attrs = {"id": "id_day", "max": "2026-11-30", "min": "2020-01-01", "required": True}
    direct = DateInput(attrs={"class": "c"})
    assert isinstance(direct, widgets.Input)
    assert direct.render("day", value, attrs) == DjangoDate(attrs={"class": "c"}, format="%Y-%m-%d").render(
        "day", value, attrs
    )
