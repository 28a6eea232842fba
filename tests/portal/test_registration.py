"""A care team registers a patient with their INS identity, finds duplicates before they
exist, links an existing record instead, and invites the patient."""

import datetime
import re
import threading

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from portal.accounts.models import Invitation, Patient, nir_key, validate_nir
from portal.audit.models import AccessLog
from portal.careteams import services
from portal.careteams.models import CareLink
from tests.factories import CareLinkFactory, CareTeamFactory, ClinicianFactory, PatientFactory

pytestmark = pytest.mark.django_db

BODY = "2850675123456"  # a woman born in June 1985 in département 75
INS = BODY + nir_key(BODY)


def form_data(team, **changes):
    data = {
        "team": team.pk,
        "birth_name": "Lefèvre",
        "first_names": "Hélène Marie  Louise",
        "used_name": "Garnier",
        "sex": "female",
        "birth_date": "1985-06-15",
        "birth_place": "75056",
        "ins": INS,
        "ins_oid": "1.2.250.1.213.1.4.8",
        "started_on": datetime.date.today().isoformat(),
        "email": "",
    }
    return data | changes


# --- The NIR and its key -------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "1840375123456" + nir_key("1840375123456"),
        "269054958815780",  # the usual published example, key 80
        "185052A004123" + nir_key("185052A004123"),  # Corsica, 2A counts as 19
        "185052B004123" + nir_key("185052B004123"),  # 2B counts as 18
    ],
)
def test_well_formed_nir_with_its_key_is_accepted(value):
    validate_nir(value)


def test_corsica_keys_are_computed_on_19_and_18():
    assert nir_key("185052A004123") == f"{97 - 1850519004123 % 97:02d}"
    assert nir_key("185052B004123") == f"{97 - 1850518004123 % 97:02d}"


@pytest.mark.parametrize(
    "value",
    [
        BODY + f"{(int(nir_key(BODY)) % 97) + 1:02d}",  # wrong key
        BODY,  # no key
        "5850675123456" + nir_key("5850675123456"),  # no such first digit
        "185052C004123" + "00",  # no such department
        "28506751234 5" + "00",
    ],
)
def test_malformed_nir_or_wrong_key_is_refused(value):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        validate_nir(value)


# --- Registering through the page ----------------------------------------------------


def test_clinician_registers_a_patient_linked_to_their_team(client, login, clinician, team):
    login(clinician)
    response = client.post(reverse("careteams:register_patient"), form_data(team))
    patient = Patient.objects.get(ins=INS)
    assert response.status_code == 302
    assert response["Location"] == reverse("careteams:patient_detail", args=[patient.pk])
    assert (patient.birth_name, patient.first_names, patient.used_name) == ("Lefèvre", "Hélène Marie Louise", "Garnier")
    # The rest of Carnet shows the first first name and the used name.
    assert (patient.first_name, patient.last_name, patient.first_folded) == ("Hélène", "Garnier", "helene")
    assert (patient.birth_place, patient.ins_oid, patient.user_id) == ("75056", "1.2.250.1.213.1.4.8", None)
    link = CareLink.objects.get(patient=patient)
    assert (link.team, link.status, link.started_on, link.linked_by) == (
        team,
        "active",
        datetime.date.today(),
        clinician,
    )
    # The patient will read who linked their record to which team.
    assert AccessLog.objects.filter(patient=patient, action="link_started", team=team, actor=clinician).exists()
    assert client.get(response["Location"]).status_code == 200


def test_registering_with_an_address_sends_the_invitation(
    client, login, clinician, team, django_capture_on_commit_callbacks
):
    login(clinician)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("careteams:register_patient"), form_data(team, email="helene@example.org"))
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.patient.ins, invitation.invited_by) == ("helene@example.org", INS, clinician)
    assert [message.to for message in mail.outbox] == [["helene@example.org"]]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ins": BODY + "00"}, "ins"),
        ({"ins": "1850675123456" + nir_key("1850675123456")}, "ins"),  # a man's INS for a woman
        ({"birth_date": "1986-06-15"}, "ins"),  # not the birth year of the INS
        ({"birth_date": "1985-07-15"}, "ins"),  # nor its month
        ({"birth_name": ""}, "birth_name"),
        ({"birth_place": "7505"}, "birth_place"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
    ],
)
def test_wrong_identity_is_refused_with_the_error_linked_to_its_field(client, login, clinician, team, changes, field):
    login(clinician)
    response = client.post(reverse("careteams:register_patient"), form_data(team, **changes))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    page = response.content.decode()
    assert 'class="alert alert-error error-summary"' in page
    assert f'href="#id_{field}"' in page
    assert not Patient.objects.exists()


def test_ins_typed_with_spaces_is_stored_without(client, login, clinician, team):
    login(clinician)
    spaced = f"{INS[0]} {INS[1:3]} {INS[3:5]} {INS[5:7]} {INS[7:10]} {INS[10:13]} {INS[13:]}"
    client.post(reverse("careteams:register_patient"), form_data(team, ins=spaced))
    assert Patient.objects.get().ins == INS


def test_a_team_that_is_not_the_clinicians_is_refused(client, login, clinician, other_team):
    login(clinician)
    response = client.post(reverse("careteams:register_patient"), form_data(other_team))
    assert response.status_code == 200
    assert "team" in response.context["form"].errors
    assert not Patient.objects.exists()


# --- Duplicates ---------------------------------------------------------------------


def test_same_ins_offers_to_link_the_existing_patient_instead(client, login, clinician, team, other_team):
    existing = PatientFactory(user=None, ins=INS, first_name="Hélène", last_name="Garnier")
    CareLinkFactory(patient=existing, team=other_team)
    login(clinician)
    response = client.post(reverse("careteams:register_patient"), form_data(team, birth_name="Autre", used_name=""))
    assert response.status_code == 200
    assert response.context["same_ins"] is True
    assert response.context["candidates"] == [existing]
    page = response.content.decode()
    assert f'name="link" value="{existing.pk}"' in page
    # A team's name can tell a condition: the other team is not shown.
    assert other_team.name not in page
    assert Patient.objects.count() == 1
    # Even when told "none of these", a second record with this INS is refused.
    data = form_data(team, confirm_new="on", none_of=str(existing.pk))
    client.post(reverse("careteams:register_patient"), data)
    assert Patient.objects.count() == 1


def test_same_names_and_birth_date_accents_and_case_aside_are_shown_before_creating(client, login, clinician, team):
    existing = PatientFactory(
        user=None, first_name="HELENE", last_name="lefevre", birth_date=datetime.date(1985, 6, 15)
    )
    PatientFactory(user=None, first_name="Hélène", last_name="Lefèvre", birth_date=datetime.date(1985, 6, 16))
    login(clinician)
    response = client.post(reverse("careteams:register_patient"), form_data(team, ins=""))
    assert response.context["candidates"] == [existing]
    assert response.context["same_ins"] is False
    # Read first: the page's script gives it the focus, as it gives a form's error summary.
    assert 'aria-labelledby="candidates-title" tabindex="-1" data-takes-focus' in response.content.decode()
    assert Patient.objects.count() == 2
    # Confirmed, after seeing every candidate: a new record.
    data = form_data(team, ins="", confirm_new="on", none_of=str(existing.pk))
    assert client.post(reverse("careteams:register_patient"), data).status_code == 302
    assert Patient.objects.count() == 3


def test_confirming_without_having_seen_a_new_candidate_shows_it_first(client, login, clinician, team):
    first = PatientFactory(user=None, first_name="Hélène", last_name="Garnier", birth_date=datetime.date(1985, 6, 15))
    second = PatientFactory(user=None, first_name="Helene", last_name="Garnier", birth_date=datetime.date(1985, 6, 15))
    login(clinician)
    data = form_data(team, ins="", confirm_new="on", none_of=str(first.pk))
    response = client.post(reverse("careteams:register_patient"), data)
    assert response.status_code == 200
    assert response.context["candidates"] == [first, second]
    assert Patient.objects.count() == 2


def test_linking_the_existing_patient(client, login, clinician, team, other_team):
    existing = PatientFactory(user=None, ins=INS, first_name="Hélène", last_name="Garnier")
    CareLinkFactory(patient=existing, team=other_team)
    login(clinician)
    response = client.post(reverse("careteams:register_patient"), form_data(team, link=existing.pk))
    assert response["Location"] == reverse("careteams:patient_detail", args=[existing.pk])
    assert CareLink.objects.get(patient=existing, team=team).status == "active"
    assert Patient.objects.count() == 1


def test_an_id_the_identity_does_not_match_cannot_be_linked(client, login, clinician, team, other_patient):
    """Knowing a record's number is not enough to reach it."""
    login(clinician)
    response = client.post(reverse("careteams:register_patient"), form_data(team, link=other_patient.pk))
    assert response.status_code == 200
    assert not CareLink.objects.filter(patient=other_patient, team=team).exists()
    assert other_patient.last_name not in response.content.decode()


def test_a_team_the_patient_blocked_cannot_link_itself_again(client, login, clinician, team):
    existing = PatientFactory(user=None, ins=INS, first_name="Hélène", last_name="Garnier")
    CareLinkFactory(patient=existing, team=team, status=CareLink.Status.BLOCKED)
    login(clinician)
    response = client.post(reverse("careteams:register_patient"), form_data(team, link=existing.pk))
    assert response.status_code == 200
    assert CareLink.objects.get(patient=existing, team=team).status == "blocked"


@pytest.mark.parametrize("who", ["clinician", "support"])
@pytest.mark.parametrize("same_ins", [True, False])
def test_a_record_already_linked_to_the_team_is_said_so_with_no_button(client, login, request, team, who, same_ins):
    existing = PatientFactory(user=None, ins=INS, first_name="Hélène", last_name="Garnier", birth_name="Lefèvre")
    CareLinkFactory(patient=existing, team=team)
    login(request.getfixturevalue(who))
    url = reverse("careteams:register_patient" if who == "clinician" else "support:register_patient")
    data = form_data(team, ins=INS if same_ins else "")
    if who == "support":
        data |= {"reason": "Demande du cabinet par téléphone", "request_key": "5b0c9f4e-8e1d-4d2a-9a55-0f1e2d3c4b5b"}
    page = client.post(url, data, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    page = page.split('id="candidates-title"', 1)[1].split("</section>", 1)[0]
    assert f'name="link" value="{existing.pk}"' not in page
    record = reverse("careteams:patient_detail", args=[existing.pk])
    if who == "clinician":
        assert "Already your team's patient." in page and record in page
    else:  # support never opens a record
        assert "Already linked to this care team." in page and record not in page


@pytest.mark.parametrize("who", ["clinician", "support"])
@pytest.mark.parametrize("same_ins", [True, False])
@pytest.mark.parametrize("blocked_by", ["this team", "another team"])
def test_a_record_that_blocked_the_team_is_said_so_at_once_without_its_details(
    client, login, request, team, other_team, who, same_ins, blocked_by
):
    """Finding the person gives a team they blocked neither a button to link them nor
    what it did not type (birth place, INS); a block of another team changes nothing."""
    existing = PatientFactory(
        user=None, ins=INS, first_name="Hélène", last_name="Garnier", birth_name="Lefèvre", birth_place="33063"
    )
    CareLinkFactory(patient=existing, team=team if blocked_by == "this team" else other_team, status="blocked")
    login(request.getfixturevalue(who))
    url = reverse("careteams:register_patient" if who == "clinician" else "support:register_patient")
    data = form_data(team, ins=INS if same_ins else "", birth_place="")
    if who == "support":
        data |= {"reason": "Demande du cabinet par téléphone", "request_key": "5b0c9f4e-8e1d-4d2a-9a55-0f1e2d3c4b5a"}
    page = client.post(url, data, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    page = page.split('id="candidates-title"', 1)[1].split("</section>", 1)[0]  # what was found, not the form
    assert "GARNIER Hélène" in page
    refused = "has blocked your care team" if who == "clinician" else "has blocked this care team"
    if blocked_by == "this team":
        assert refused in page
        assert f'name="link" value="{existing.pk}"' not in page
        assert "33063" not in page and INS[-5:] not in page
    else:
        assert "has blocked" not in page
        assert f'name="link" value="{existing.pk}"' in page
        assert "33063" in page
    # Either way the person reads in their history that this record was found.
    assert AccessLog.objects.filter(patient=existing, action=AccessLog.Action.IDENTITY_MATCH).count() == 1


def test_an_ended_link_is_opened_again_with_the_new_start_date(clinician, team):
    existing = PatientFactory(user=None, ins=INS, first_name="Hélène", last_name="Garnier")
    CareLinkFactory(patient=existing, team=team, status=CareLink.Status.ENDED, ended_on=datetime.date(2025, 1, 1))
    identity = services.Identity(
        birth_name="Lefèvre", first_names="Hélène", birth_date=datetime.date(1985, 6, 15), ins=INS
    )
    done = services.link_existing_patient(
        by=clinician, team=team, identity=identity, patient_pk=existing.pk, started_on=datetime.date(2026, 2, 1)
    )
    assert (done.link.status, done.link.started_on, done.link.ended_on) == ("active", datetime.date(2026, 2, 1), None)


def test_double_submit_links_once_and_creates_one_record(client, login, clinician, team):
    login(clinician)
    client.post(reverse("careteams:register_patient"), form_data(team))
    second = client.post(reverse("careteams:register_patient"), form_data(team))
    assert second.status_code == 200  # "this patient exists: link them"
    assert second.context["candidates"] == [Patient.objects.get()]
    assert Patient.objects.count() == 1 and CareLink.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_ins", [True, False])
def test_two_clinicians_registering_the_same_person_at_once_make_one_record(
    postgres, live_server, login, settings, same_ins
):
    """Real concurrent requests on PostgreSQL: the second waits for the first and is
    offered to link the record it made, instead of a 500 or a twin."""
    import requests
    from django.test import Client

    settings.CSRF_COOKIE_SECURE = False  # the live server speaks plain HTTP

    sessions = []
    for team in (CareTeamFactory(), CareTeamFactory()):
        signed_in = login(ClinicianFactory(teams=[team]), on=Client())
        session = requests.Session()
        cookie = settings.SESSION_COOKIE_NAME
        session.cookies.set(cookie, signed_in.cookies[cookie].value)
        sessions.append((session, team))
    barrier, answers = threading.Barrier(2), []
    url = f"{live_server.url}{reverse('careteams:register_patient')}"

    def register(session, team):
        page = session.get(url)
        assert page.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        data = form_data(team, ins=INS if same_ins else "", csrfmiddlewaretoken=token)
        barrier.wait()
        answer = session.post(url, data=data, headers={"Referer": url}, allow_redirects=False)
        answers.append(answer)

    threads = [threading.Thread(target=register, args=pair) for pair in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 302], statuses
    loser = next(answer for answer in answers if answer.status_code == 200)
    patient = Patient.objects.get()
    assert f'name="link" value="{patient.pk}"' in loser.text  # "link this patient" instead
    assert CareLink.objects.count() == 1
    # The server's request threads keep their connections (CONN_MAX_AGE): end them, so
    # the test database can be dropped.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_records_offered_as_the_same_person_are_logged_as_found(client, login, clinician, team):
    """The person whose record came up when someone registered a patient reads it in
    their access history."""
    existing = PatientFactory(user=None, ins=INS, first_name="Hélène", last_name="Garnier")
    login(clinician)
    client.post(reverse("careteams:register_patient"), form_data(team))
    log = AccessLog.objects.get(patient=existing)
    assert (log.actor, log.action) == (clinician, "identity_match")


def test_a_link_cannot_start_before_the_patients_birth(client, login, clinician, team):
    login(clinician)
    data = {**form_data(team), "started_on": "1950-01-01"}
    response = client.post(reverse("careteams:register_patient"), data)
    assert response.status_code == 200
    assert "La date de début est antérieure à la naissance du patient." in response.content.decode()
    assert not Patient.objects.filter(ins=INS).exists()


@pytest.mark.parametrize(
    ("name", "valid"),
    [("N’Diaye", True), ("Le Gall-Martin", True), ("O'Brien", True), ("Éloïse Marie", True), ("Müller", True),
     ("<img src=x onerror=alert(9)>", False), ("Durand2", False), ("Du--", False), ("Jean  Pierre", True), ("-Jean", False)],
)  # fmt: skip
def test_identity_names_are_letters_as_on_the_identity_document(name, valid):
    from portal.careteams.forms import identity_name

    if valid:
        identity_name(name)
    else:
        with pytest.raises(ValidationError):
            identity_name(name)


@pytest.mark.parametrize(("sex", "said"), [("female", "est enregistrée et liée"), ("male", "est enregistré et lié"),
                                           ("unknown", "est enregistré(e) et lié(e)")])  # fmt: skip
def test_the_confirmation_agrees_with_the_patients_sex(client, login, clinician, team, sex, said):
    login(clinician)
    response = client.post(reverse("careteams:register_patient"), form_data(team, sex=sex, ins=""), follow=True)
    # The team by its name, after « l’équipe »: French contracts « à le » before a name
    # that takes an article (« au Cabinet… »), which a name given alone cannot say.
    assert f"{said} à l’équipe «\u00a0{team.name}\u00a0»" in response.content.decode()


OTHER_BODY = "2850675123457"


@pytest.mark.parametrize(
    ("blocked", "existing_ins", "new_ins", "created"),
    [
        ("this team", None, "", False),
        ("this team", INS, "", False),
        ("this team", None, "other", False),  # an INS on one side only tells no two people apart
        ("this team", INS, "other", True),  # two INS: two people
        ("this professional", None, "", False),
        ("another team", None, "", True),
        ("nothing", None, "", True),
    ],
)
def test_none_of_these_cannot_make_a_new_record_around_a_block(
    client, login, clinician, team, other_team, blocked, existing_ins, new_ins, created
):
    """The only record found has blocked the team (or the professional registering):
    "none of these is this person" makes no second record of them, unless both have an
    INS and the two differ."""
    from portal.careteams.models import ClinicianBlock

    existing = PatientFactory(
        user=None, ins=existing_ins, first_name="Hélène", last_name="Garnier", birth_date=datetime.date(1985, 6, 15)
    )
    if blocked in ("this team", "another team"):
        CareLinkFactory(patient=existing, team=team if blocked == "this team" else other_team, status="blocked")
    elif blocked == "this professional":
        ClinicianBlock.objects.create(patient=existing, clinician=clinician)
    login(clinician)
    ins = OTHER_BODY + nir_key(OTHER_BODY) if new_ins else ""
    data = form_data(team, ins=ins, confirm_new="on", none_of=str(existing.pk))
    response = client.post(reverse("careteams:register_patient"), data)
    assert Patient.objects.count() == (2 if created else 1)
    if not created:
        assert "a bloqué cette équipe de soins : aucun nouveau dossier" in response.content.decode()
