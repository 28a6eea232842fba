"""The console's account search: prefixes of names and email, exact identifiers,
odd input, and a query count that does not grow with the accounts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.accounts.models import User
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return {
        "camille": UserFactory(first_name="Camille", last_name="Durand", email="camille.durand@example.org"),
        "lucas": UserFactory(first_name="Lucas", last_name="Dupont", email="l.dupont@example.org"),
        "helene": UserFactory(first_name="Hélène", last_name="Lefèvre", email="helene@example.org"),
        "percent": UserFactory(first_name="Zoé", last_name="Cent", email="100%sure@example.org"),
    }


def found(client, query):
    response = client.post(reverse("support:home"), {"q": query}, follow=True)
    assert response.status_code == 200, query
    return {user.email for user in response.context["page"].object_list}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("durand", {"camille.durand@example.org"}),
        ("  DU  ", {"camille.durand@example.org", "l.dupont@example.org"}),
        ("camille dur", {"camille.durand@example.org"}),
        ("dur camille", {"camille.durand@example.org"}),
        ("camille dup", set()),  # every word must match the same person
        ("hélène", {"helene@example.org"}),
        ("helene lef", {"helene@example.org"}),  # accents aside
        ("HÉLÈNE LEFÈVRE", {"helene@example.org"}),
        ("zoe", {"100%sure@example.org"}),
        ("l.dupont@", {"l.dupont@example.org"}),
        ("urand", set()),  # names and emails match from their start
        ("100%", {"100%sure@example.org"}),
        ("%", set()),  # wildcards are plain characters
        ("_", set()),
        ("\\", set()),
        ("'; DROP TABLE accounts_user; --", set()),
        ("<script>alert(1)</script>", set()),
        ("camille\x00", {"camille.durand@example.org"}),
        ("x" * 5000, set()),
    ],
)
def test_search(client, login, support, people, query, expected):
    login(support)
    assert found(client, query) == expected


def test_search_by_identifier_is_exact(client, login, support, patient, other_patient):
    patient.ins = "284037512345678"
    patient.save(update_fields=["ins"])
    login(support)
    assert found(client, "2840 3751 2345 678") == {patient.user.email}
    assert found(client, "28403751") == set()


def test_empty_search_lists_every_account_by_name(client, login, support, people, monkeypatch):
    monkeypatch.setattr("portal.support.views.PAGE_SIZE", 2)
    login(support)
    url, listed = reverse("support:home"), []
    page = client.get(url).context["page"]
    while True:  # page after page, from the cursors
        listed += page.object_list
        if page.older is None:
            break
        page = client.get(url, {"older": page.older}).context["page"]
    assert sorted(user.pk for user in listed) == sorted(User.objects.values_list("pk", flat=True))
    names = [user.last_name for user in listed]
    assert names == sorted(names) and len(listed) > 2


def test_query_count_does_not_grow_with_accounts(client, login, support, people):
    login(support)

    def count(query):
        with CaptureQueriesContext(connection) as ctx:
            client.post(reverse("support:home"), {"q": query}, follow=True)
        return len(ctx)

    def camille():  # an account that each search below finds, its record logged as shown
        return PatientFactory(user=UserFactory(first_name="Camille", last_name="Dubois"))

    camille()
    count("")  # the first request of a session writes to it
    few = [count(q) for q in ("", "d", "camille")]
    for _ in range(29):
        camille()
    assert [count(q) for q in ("", "d", "camille")] == few


def test_a_renamed_account_is_found_by_its_new_name(client, login, support, people):
    lucas = people["lucas"]
    lucas.first_name = "Élodie"
    lucas.save(update_fields=["first_name"])
    login(support)
    assert found(client, "elodie dup") == {"l.dupont@example.org"}
    assert found(client, "lucas") == set()


def test_each_identity_the_search_shows_is_in_that_persons_history(client, login, support, patient, other_patient):
    """A found account's record and a record without a login are each logged once, as
    support's; a record the search did not show is not; the person reads it."""
    from portal.audit.models import AccessLog

    patient.user.first_name, patient.user.last_name = "Camille", "Durand"
    patient.user.save()
    without_login = PatientFactory(user=None, first_name="Camille", last_name="Dubois")
    login(support)
    client.post(reverse("support:home"), {"q": "camille"}, follow=True)
    rows = AccessLog.objects.filter(actor=support)
    assert sorted((row.patient_id, row.action, row.actor_role) for row in rows) == sorted(
        [(patient.pk, "support_view", "support"), (without_login.pk, "support_view", "support")]
    )
    assert not AccessLog.objects.filter(patient=other_patient).exists()
    login(patient)
    page = client.get(reverse("records:access_history")).content.decode()
    assert "Le support a consulté l’identité et le compte" in page


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_search_rows_escape_what_they_show_and_link_only_accounts_support_may_act_on(
    client, login, support, language
):
    """Each row is written in Python (portal.support.views.ACCOUNT_ROW and PATIENT_ROW):
    every value escaped as the template escapes it, each cell labelled with its column in
    the reader's language; superusers, staff and other agents are listed without a link."""
    hostile = UserFactory(first_name="<b>Zed</b>", last_name="& « Ohé »", email="zed<x>@example.org", role="patient")
    admin = UserFactory(first_name="Zed", last_name="Admin", email="zed.admin@example.org", is_superuser=True)
    agent = UserFactory(first_name="Zed", last_name="Agent", email="zed.agent@example.org", role="support")
    off = UserFactory(first_name="Zed", last_name="Off", email="zed.off@example.org", is_active=False)
    record = PatientFactory(user=None, first_name="Zed", last_name="<i>Sans</i> compte", ins="")
    login(support)
    client.post(reverse("support:home"), {"q": "zed"})
    page = client.get(reverse("support:home"), headers={"accept-language": language}).content.decode()
    email, role, state, patient_role, active, deactivated, ins, representatives = {
        "fr": ("E-mail", "Rôle", "État", "Patient", "Actif", "Désactivé", "Identifiant national de santé (INS)",
               "Représentants"),
        "en": ("Email", "Role", "State", "Patient", "Active", "Deactivated", "National health identifier (INS)",
               "Representatives"),
    }[language]  # fmt: skip
    url = reverse("support:account", args=[hostile.pk])
    assert (
        f'<th scope="row"><a href="{url}">&lt;b&gt;Zed&lt;/b&gt; &amp; « Ohé »</a></th>\n'
        f'              <td data-label="{email}">zed&lt;x&gt;@example.org</td>\n'
        f'              <td data-label="{role}">{patient_role}</td>\n'
        f'              <td data-label="{state}">{active}</td>'
    ) in page
    for unlinked in (admin, agent):
        assert f'<th scope="row">{unlinked.get_full_name()}</th>' in page
        assert reverse("support:account", args=[unlinked.pk]) not in page
    assert f'<a href="{reverse("support:account", args=[off.pk])}">Zed Off</a>' in page
    assert f'<td data-label="{state}">{deactivated}</td>' in page
    invite, represented = (
        reverse("support:invite_patient", args=[record.pk]),
        reverse("support:representations", args=[record.pk]),
    )
    assert (
        f'<th scope="row"><a href="{invite}">Zed &lt;i&gt;Sans&lt;/i&gt; compte</a></th>\n'
        f'              <td data-label="{ins}">—</td>\n'
        f'              <td data-label="{representatives}"><a href="{represented}">{representatives}'
        '<span class="visually-hidden"> : Zed &lt;i&gt;Sans&lt;/i&gt; compte</span></a></td>'
    ) in page
    assert "<b>" not in page and "<i>Sans" not in page


def test_the_searches_keep_their_sql(client, login, support, people, patient):
    """The search's lists and count are prepared queries (portal.prepared): built once per
    shape (a number of words, an identifier), then only sent again with other values; the
    test settings check each call against the query built anew."""
    from portal import pagination
    from portal.support import views

    login(support)
    for query in ("durand", "Lucas", "camille dur", "dur camille", "helene lef", "2840 3751 2345 678", "100%"):
        client.post(reverse("support:home"), {"q": query})
        assert client.get(reverse("support:home")).status_code == 200
    assert found(client, "dup") == {"l.dupont@example.org"}  # a shape met before, other values
    # Not kept: an empty search, and a search of no word (only an email's start, which no
    # record without a login has): the ORM answers those without a query.
    listed = {
        key: kept
        for key, kept in views._patients_listed.prepared_shapes().items()
        if ("kind", "none") not in key and ("words", ()) not in key
    }
    rows = {
        key: kept
        for key, kept in pagination._prepared_rows.prepared_shapes().items()
        if ("build", views._accounts_listed) in key
    }
    # A key: the database, the values' types, then the shape's (name, value) pairs.
    for shapes, search_of in ((listed, dict), (rows, lambda shape: dict(dict(shape)["shape"]))):
        words = {search_of(key[2:]).get("words") for key in shapes}
        assert words >= {(1,), (2, 2)} and all(shapes.values()), shapes
    assert list(views._count_of_requests.prepared_shapes().values()) == [True]
