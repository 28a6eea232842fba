"""Ids and cursors in a query string are read only when made of decimal digits: "²" or
"①" are digits to Python's ``str.isdigit`` but not numbers to ``int``, and answered 500
on every paged list. They are ignored now, as any other nonsense is."""

import pytest
from django.urls import reverse

from messaging.models import Conversation
from portal.pagination import keyset_page, older_than
from records.models import Document

pytestmark = pytest.mark.django_db

ODD = ["²", "①", "١٢x", "٣"]  # superscript, circled, Arabic-Indic with a letter, Arabic-Indic alone


@pytest.mark.parametrize("odd", ODD)
def test_a_cursor_of_odd_digits_gives_the_first_page(odd):
    assert keyset_page(Document.objects.all(), {"older": odd}, field="care_date", size=5).object_list == []
    assert keyset_page(Document.objects.all(), {"newer": odd}, field="care_date", size=5).object_list == []
    assert older_than(Document.objects.all(), odd, field="care_date", size=5) in (None, ([], None))


@pytest.mark.parametrize("odd", ODD)
def test_no_page_answers_500_to_odd_digits(client, login, clinician, patient, team, support, odd):
    conversation = Conversation.objects.create(patient=patient, team=team, subject="Sujet", started_by=patient.user)
    pages = {
        clinician: [
            reverse(f"careteams:patient_{page}", args=[patient.pk]) + f"?older={odd}"
            for page in ("documents", "prescriptions", "results")
        ]
        + [
            reverse("careteams:patient_list") + f"?newer={odd}",
            reverse("messaging:team_inbox") + f"?team={odd}&assigned={odd}&older={odd}",
            reverse("messaging:conversation", args=[conversation.pk]) + f"?before={odd}",
            reverse("messaging:thread", args=[conversation.pk]) + f"?after={odd}",
        ],
        patient: [
            reverse(name) + f"?older={odd}"
            for name in ("records:documents", "records:results", "records:prescriptions", "messaging:inbox")
        ]
        + [reverse("records:access_history") + f"?newer={odd}", reverse("records:record_history") + f"?older={odd}"],
        support: [reverse("support:audit") + f"?agent={odd}&account={odd}"],
    }
    for who, urls in pages.items():
        login(who)
        for url in urls:
            assert client.get(url).status_code == 200, url
