"""Role homes, the clinician's patient pages, the support console: who reaches what."""

import pytest
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from portal import rows
from portal.accounts.models import Patient
from portal.audit.models import AccessLog
from portal.careteams.models import CareLink
from tests.factories import CareLinkFactory, PatientFactory

pytestmark = pytest.mark.django_db

# The people of the access matrix, by fixture name; None is an anonymous visitor.
PEOPLE = ["patient", "other_patient", "clinician", "other_clinician", "blocked_clinician", "support", None]


@pytest.fixture
def blocked_clinician(patient):
    """A clinician whose team the patient has blocked."""
    from tests.factories import CareTeamFactory, ClinicianFactory

    team = CareTeamFactory(name="Pharmacie bloquée")
    CareLinkFactory(patient=patient, team=team, status=CareLink.Status.BLOCKED)
    return ClinicianFactory(teams=[team])


def visit(request, client, login, who, url):
    if who is not None:
        login(request.getfixturevalue(who))
    return client.get(url)


# A patient's record for their care team: its summary and each history.
RECORD_PAGES = [f"careteams:patient_{page}" for page in ("detail", "documents", "prescriptions", "results")]

# url name, args (from the patient), expected status for each of PEOPLE
MATRIX = [
    ("patient_home", False, [200, 200, 404, 404, 404, 404, 302]),
    ("careteams:patient_list", False, [404, 404, 200, 200, 200, 404, 302]),
    *((name, True, [404, 404, 200, 404, 404, 404, 302]) for name in RECORD_PAGES),
    ("support:home", False, [404, 404, 404, 404, 404, 200, 302]),
]


@pytest.mark.parametrize(("name", "needs_patient", "expected"), MATRIX)
@pytest.mark.parametrize("who_index", range(len(PEOPLE)))
def test_access_matrix(request, client, login, patient, name, needs_patient, expected, who_index):
    who = PEOPLE[who_index]
    url = reverse(name, args=[patient.pk] if needs_patient else [])
    response = visit(request, client, login, who, url)
    assert response.status_code == expected[who_index], (name, who)
    if response.status_code == 302:
        assert response["Location"].startswith(reverse("account_login"))
    # Refused answers carry nothing of the patient; neither do pages of people
    # unrelated to them. (Support staff do see account names: that is their job.)
    if response.status_code != 200 or who in ("other_patient", "other_clinician", "blocked_clinician"):
        assert patient.last_name not in response.content.decode()


def test_anonymous_home_goes_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize(
    ("who", "home"),
    [("patient", "patient_home"), ("clinician", "careteams:patient_list"), ("support", "support:home")],
)
def test_each_role_lands_on_its_home(request, client, login, who, home):
    login(request.getfixturevalue(who))
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse(home)


def test_patient_dashboard_shows_the_four_sections(client, login, patient):
    login(patient)
    page = client.get(reverse("patient_home")).content.decode()
    assert "Camille" in page
    for section in ("documents-title", "prescriptions-title", "results-title", "messages-title"):
        assert f'id="{section}"' in page


def test_clinician_sees_their_teams_patients_and_not_others(client, login, clinician, patient, other_patient):
    login(clinician)
    page = client.get(reverse("careteams:patient_list")).content.decode()
    assert "DURAND" in page
    assert "BERNARD" not in page


def test_patient_list_query_count_does_not_grow(client, login, clinician, team):
    login(clinician)
    url = reverse("careteams:patient_list")

    def count():
        client.get(url)  # warm the session
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx)

    CareLinkFactory(team=team)
    few = count()
    for _ in range(15):
        CareLinkFactory(team=team)
    assert count() == few


def test_patient_list_paginates_by_name_from_a_cursor(client, login, clinician, team):
    """Next and previous pages start from the edge row's id: no OFFSET, no COUNT, and a
    deep page costs the queries of the first."""
    for _ in range(30):
        CareLinkFactory(team=team)
    login(clinician)
    url = reverse("careteams:patient_list")
    client.get(url)  # warm the session
    with CaptureQueriesContext(connection) as first_queries:
        first = client.get(url)
    page = first.context["page"]
    assert len(page.object_list) == 25 and page.newer is None
    assert f"older={page.older}" in first.content.decode() and "Suivant" in first.content.decode()
    with CaptureQueriesContext(connection) as next_queries:
        second = client.get(url, {"older": page.older})
    assert len(second.context["page"].object_list) == 5 and second.context["page"].older is None
    everyone = [*page.object_list, *second.context["page"].object_list]
    assert everyone == list(Patient.objects.filter(care_links__team=team).order_by("last_name", "first_name", "pk"))
    back = client.get(url, {"newer": second.context["page"].newer})
    assert back.context["page"].object_list == page.object_list
    sql = " ".join(query["sql"] for query in next_queries.captured_queries).upper()
    assert " OFFSET " not in sql and "COUNT(" not in sql
    assert len(next_queries) <= len(first_queries) + 1  # the cursor row, by its id
    # A cursor that is not a row of one's own patients is the first page.
    assert client.get(url, {"older": "zzz"}).context["page"].object_list == page.object_list


def test_clinician_opening_a_record_is_logged_for_the_patient(client, login, clinician, patient, team):
    login(clinician)
    assert client.get(reverse("careteams:patient_detail", args=[patient.pk])).status_code == 200
    log = AccessLog.objects.get()
    assert (log.patient, log.actor, log.team, log.action) == (patient, clinician, team, "view_record")


def test_refused_record_reads_are_not_logged(client, login, other_clinician, patient):
    login(other_clinician)
    assert client.get(reverse("careteams:patient_detail", args=[patient.pk])).status_code == 404
    assert not AccessLog.objects.exists()


def test_unknown_patient_is_a_styled_404(client, login, clinician):
    login(clinician)
    response = client.get(reverse("careteams:patient_detail", args=[987654]))
    assert response.status_code == 404
    assert "Carnet" in response.content.decode()
    assert 'id="main"' in response.content.decode()


def test_unknown_url_is_a_styled_404(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert 'id="main"' in response.content.decode()


def test_support_search_finds_accounts_by_name_or_email(client, login, support, patient, other_patient):
    login(support)
    page = client.post(reverse("support:home"), {"q": "durand"}, follow=True).content.decode()
    assert patient.user.email in page
    assert other_patient.user.email not in page
    by_email = client.post(
        reverse("support:home"), {"q": other_patient.user.email.upper()}, follow=True
    ).content.decode()
    assert other_patient.user.email in by_email


def test_support_search_stays_out_of_the_url(client, login, support, patient):
    login(support)
    response = client.post(reverse("support:home"), {"q": " Durand "})
    assert response["Location"] == reverse("support:home")  # no name or identifier in the URL
    page = client.get(response["Location"])
    assert [user.pk for user in page.context["page"].object_list] == [patient.user.pk]
    assert 'value="Durand"' in page.content.decode()  # the box still shows what was searched
    assert client.get(reverse("support:home"), {"q": "martin"}).context["query"] == "Durand"  # ?q= is ignored


def test_support_search_survives_odd_input(client, login, support):
    login(support)
    for query in ["%", "_", "' OR 1=1 --", "\\", "é" * 500, "<script>"]:
        response = client.post(reverse("support:home"), {"q": query}, follow=True)
        assert response.status_code == 200
        assert "<script>" not in response.content.decode().split('id="main"')[1]


def test_support_search_query_count_does_not_grow(client, login, support):
    login(support)
    url = reverse("support:home")

    def count():
        client.get(url)
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        return len(ctx)

    PatientFactory()
    few = count()
    for _ in range(20):
        PatientFactory()
    assert count() == few


def test_patient_list_pages_walk_through_equal_names_both_ways(client, login, clinician, team):
    """Many patients with the same names: the id breaks the tie, so walking forward then
    back visits each patient once, in the same order."""
    for n in range(27):
        CareLinkFactory(team=team, patient=PatientFactory(last_name=["Martin", "Petit"][n % 2], first_name="Léa"))
    login(clinician)
    url = reverse("careteams:patient_list")
    pages, params = [], {}
    while True:
        page = client.get(url, params).context["page"]
        pages.append(list(page.object_list))
        if page.older is None:
            break
        params = {"older": page.older}
    seen = [patient for rows in pages for patient in rows]
    assert [len(rows) for rows in pages] == [25, 2]
    assert seen == list(Patient.objects.filter(care_links__team=team).order_by("last_name", "first_name", "pk"))
    back = client.get(url, {"newer": client.get(url, params).context["page"].newer}).context["page"]
    assert list(back.object_list) == pages[0]


# What careteams/patient_list.html's loop wrote, before the view wrote its rows
# (careteams.views.PATIENT_ROW): the markup the page's styles and tests were made for.
PATIENT_LOOP = Template(
    """{% load translations %}{% translate "Birth date" as born_label %}{% translate "Care teams" as teams_label %}{% for patient in patients %}
            <tr>
              <th scope="row"><a href="{{ patient.url }}">{{ patient.list_name }}</a></th>
              <td data-label="{{ born_label }}">{{ patient.birth_label }}</td>
              <td data-label="{{ teams_label }}">{{ patient.teams_label }}</td>
            </tr>
          {% endfor %}"""
)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_patient_rows_read_as_the_loop_wrote_them(clinician, team, other_team, language):
    """Names, birth dates and teams (hostile text included) escaped as the template did."""
    from portal.careteams.views import _patient_rows_html

    first = CareLinkFactory(team=team, patient__last_name="O'Brien <b>", patient__first_name='Zoé & "co"').patient
    second = CareLinkFactory(team=team, patient__last_name="Durand", patient__first_name="Léa").patient
    shared = {first.pk: ["Cabinet <d'essai>", "Équipe & co"]}
    url = rows.url_by_pk("careteams:patient_detail")
    with translation.override(language):
        for patient in (first, second):
            patient.url, patient.list_name = url(patient.pk), f"{patient.last_name.upper()} {patient.first_name}"
            patient.birth_label = rows.date_formatter("SHORT_DATE_FORMAT")(patient.birth_date)
            patient.teams_label = ", ".join(shared.get(patient.pk, ()))
        expected = PATIENT_LOOP.render(Context({"patients": [first, second]}))
        assert _patient_rows_html([first, second], shared, url=url) == expected
    assert "O&#x27;BRIEN &lt;B&gt;" in expected and "Cabinet &lt;d&#x27;essai&gt;, Équipe &amp; co" in expected
