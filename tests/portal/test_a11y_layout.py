"""What every page's layout does for accessibility: a refused form says so in the page
title and sums its errors up with links to the fields; the navigation marks the
current item; every data table stacks on a phone."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def title(response):
    return re.search(r"<title>(.*?)</title>", response.content.decode(), re.S).group(1).strip()


def summary(response):
    """The error summary's links, as (target id, text)."""
    html = response.content.decode()
    box = re.search(r'<div class="alert alert-error error-summary" role="alert" tabindex="-1">(.*?)</div>', html, re.S)
    assert box, "no error summary"
    return re.findall(r'<a href="#([^"]+)">([^<]+)</a>', box.group(1)), html


def test_a_refused_sign_in_says_error_in_the_title_and_links_to_the_field(client):
    assert title(client.get(reverse("account_login"))) == "Se connecter · Carnet"
    response = client.post(reverse("account_login"), {"login": "", "password": "x"})
    assert title(response) == "Erreur – Se connecter · Carnet"
    links, html = summary(response)
    assert links == [("id_login", "E-mail : Ce champ est obligatoire.")]
    assert 'id="id_login"' in html  # the link leads to the field itself


def test_the_error_title_and_summary_are_in_english_too(client):
    client.cookies["django_language"] = "en"
    response = client.post(reverse("account_login"), {"login": "", "password": "x"})
    assert title(response) == "Error – Sign in · Carnet"
    assert summary(response)[0] == [("id_login", "Email: This field is required.")]


def test_one_refused_form_among_several_on_a_page(client, login, patient):
    """The medical profile holds a form per kind of entry: the one refused is summed up."""
    login(patient)
    response = client.post(reverse("records:add_profile_entry", args=["allergy"]), {"allergy-substance": ""})
    assert title(response).startswith("Erreur – ")
    links, html = summary(response)
    assert links and all(target.startswith("id_allergy-") for target, _ in links)
    assert all(f'id="{target}"' in html for target, _ in links)
    assert not title(client.get(reverse("records:profile"))).startswith("Erreur")  # a fresh page is not an error


@pytest.mark.parametrize(
    ("who", "url"),
    [
        ("patient", "patient_home"),
        ("patient", "messaging:inbox"),
        ("patient", "accounts:security"),
        ("clinician", "careteams:patient_list"),
        ("support", "support:home"),
    ],
)
def test_the_navigation_marks_the_current_page(client, login, request, who, url):
    login(request.getfixturevalue(who))
    nav = re.search(
        r'<nav aria-label="[^"]+" class="main-nav">(.*?)</nav>', client.get(reverse(url)).content.decode(), re.S
    )
    marked = re.findall(r'<a href="([^"]+)" aria-current="(page|true)"', nav.group(1))
    assert marked == [(reverse(url), "page")]


def test_the_navigation_marks_its_section_on_a_page_below_it(client, login, patient):
    login(patient)
    html = client.get(reverse("records:documents")).content.decode()
    assert 'aria-current="true"' in html and f'href="{reverse("patient_home")}" aria-current="true"' in html


def test_every_data_table_stacks_on_a_phone_and_labels_its_cells():
    """Under 40rem a .table-stack table shows its rows as blocks, each cell with its
    column's name (an empty one for a cell of buttons): nothing hides past the right
    edge. PDFs are not screens."""
    for path in TEMPLATES.rglob("*.html"):
        if "pdf" in path.parts:
            continue
        text = path.read_text()
        for table in re.findall(r"<table[^>]*>", text):
            assert 'class="table-stack"' in table, f"{path}: {table}"
        for cell in re.findall(r"<td[^>]*>", text):
            assert "data-label=" in cell, f"{path}: {cell}"


def test_a_help_text_holding_a_list_stays_in_the_element_the_field_points_to():
    """The password rules are a list: inside a p the browser would close the p before it,
    and aria-describedby would point at an empty element."""
    from django import forms

    from portal.widgets import field_html

    class Form(forms.Form):
        password1 = forms.CharField(help_text="<ul><li>12 caractères au moins</li></ul>")

    html = field_html(Form()["password1"])
    assert 'aria-describedby="id_password1_helptext"' in html
    assert re.search(
        r'<div class="help" id="id_password1_helptext"><ul><li>12 caractères au moins</li></ul></div>', html
    )
