"""One name, however it is typed: apostrophes (straight or typographic), hyphens and
dashes, spaces, dots, accents and case aside, wherever names are matched: the duplicate
check of registration, the care team's patient search, support's search, the FHIR
patient match. And names that differ otherwise still do not match."""

import datetime
import importlib

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.urls import reverse

from fhir_api import services as fhir
from fhir_api.models import SCOPES
from fhir_api.resources import Identity as FhirIdentity
from portal.accounts.models import Patient, folded_name, nir_key
from portal.careteams import services
from portal.careteams.forms import IdentityNameField, identity_name
from tests.factories import CareLinkFactory, PatientFactory, UserFactory
from tests.portal.test_registration import form_data

pytestmark = pytest.mark.django_db

NDIAYE_BORN = datetime.date(2012, 7, 9)
ELOISE_BORN = datetime.date(1990, 2, 3)
NDIAYE_INS = "2120775123456" + nir_key("2120775123456")  # a girl born in July 2012


def spellings(*forms: tuple[str, ...]) -> list[str]:
    """Each form's parts joined by every separator a name is typed with, or by none; in
    turn as written, in upper case and in lower case (case is folded apart from them)."""
    separators = ["'", "’", "ʼ", "‘", "`", "-", "‐", "–", "—", " ", ".", ". ", ""]
    names = [separator.join(parts) for parts in forms for separator in separators]
    return [(str, str.upper, str.lower)[index % 3](name) for index, name in enumerate(names)]


NDIAYE = spellings(("N", "Diaye"))
LEFEVRE_DUPONT = spellings(("Lefèvre", "Dupont"), ("Lefevre", "Düpont"))
TABLE = [("Aminata", name, "ndiaye") for name in NDIAYE] + [("Éloïse", name, "eloise") for name in LEFEVRE_DUPONT]


@pytest.fixture
def people(team, support):
    """The care team's patients: two named with separators (N'DIAYE with a login, as
    the identity document writes her, Lefèvre-Dupont without one), and namesakes of
    theirs that must not be taken for them."""

    def linked(first, last, born, with_login=True, **fields):
        user = UserFactory(first_name=first, last_name=last) if with_login else None
        patient = PatientFactory(user=user, first_name=first, last_name=last, birth_date=born, **fields)
        CareLinkFactory(patient=patient, team=team)
        return patient

    return {
        "ndiaye": linked("Aminata", "N'DIAYE", NDIAYE_BORN, ins=NDIAYE_INS),
        "eloise": linked("Éloïse", "Lefèvre-Dupont", ELOISE_BORN, with_login=False),
        "awa": linked("Awa", "Diaye", NDIAYE_BORN),
        "dupontel": linked("Éloïse", "Dupontel", ELOISE_BORN),
        "camille": linked("Camille", "Durand", datetime.date(1985, 6, 15)),
    }


def by_clinician(client, name):
    client.post(reverse("careteams:patient_list"), {"name": name})
    return {patient.full_name for patient in client.get(reverse("careteams:patient_list")).context["page"].object_list}


def by_support(client, query):
    """The accounts and the records without a login the console lists for ``query``."""
    context = client.post(reverse("support:home"), {"q": query}, follow=True).context
    return {user.get_full_name() for user in context["page"].object_list} | {p.full_name for p in context["patients"]}


def warned_of(client, team, *, first_names, birth_name, birth_date):
    """The records the registration form offers before making a new one."""
    data = form_data(
        team, first_names=first_names, birth_name=birth_name, used_name="", birth_date=birth_date.isoformat(), ins=""
    )
    response = client.post(reverse("careteams:register_patient"), data)
    if response.status_code == 302:  # none: the new record is made
        return []
    return response.context["candidates"]


def typed_in_the_form(name):
    """Whether the registration form takes ``name`` (look-alike apostrophes and dashes
    read as the usual ones)."""
    try:
        IdentityNameField(validators=[identity_name]).clean(name)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    "typed", ["N‘Diaye", "Nʼdiaye", "N`Diaye", "Lefèvre–Dupont", "Lefèvre—Dupont", "Lefèvre‐Dupont"]
)
def test_the_form_reads_look_alike_apostrophes_and_dashes_as_the_usual_ones(typed):
    kept = IdentityNameField(validators=[identity_name]).clean(typed)
    assert kept in ("N’Diaye", "N’diaye", "Lefèvre-Dupont")


# --- The table: each spelling finds the person, in each place ---------------------------


@pytest.mark.parametrize(("first", "name", "who"), TABLE)
def test_registration_warns_of_the_record_whatever_the_spelling(
    client, login, clinician, team, people, first, name, who
):
    """Through the form for what it accepts (apostrophes ' and ’, hyphen, space); the
    check itself for the rest, which the form refuses as not on an identity document."""
    existing, born = people[who], people[who].birth_date
    if typed_in_the_form(name):
        login(clinician)
        assert warned_of(client, team, first_names=first, birth_name=name, birth_date=born) == [existing]
        assert Patient.objects.count() == len(people)
    else:
        identity = services.Identity(birth_name=name, first_names=first, birth_date=born, sex="female")
        assert services.find_duplicates(identity=identity) == [existing]


@pytest.mark.parametrize(("first", "name", "who"), TABLE)
def test_the_clinicians_search_finds_the_patient_whatever_the_spelling(
    client, login, clinician, people, first, name, who
):
    login(clinician)
    full_name = people[who].full_name
    assert by_clinician(client, name) == {full_name}
    assert by_clinician(client, f"{first} {name}") == {full_name}
    assert by_clinician(client, f"{name} {first[:3]}") == {full_name}


@pytest.mark.parametrize(("first", "name", "who"), TABLE)
def test_supports_search_finds_the_person_whatever_the_spelling(client, login, support, people, first, name, who):
    login(support)
    full_name = people[who].full_name
    assert by_support(client, name) == {full_name}
    assert by_support(client, f"{first} {name}") == {full_name}


# --- What still does not match -----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("urand", set()),  # names match from their start
        ("diaye", {"Awa Diaye"}),  # not N'DIAYE: her name starts with its N
        ("dupont", {"Éloïse Dupontel"}),  # nor Lefèvre-Dupont
        ("n dia", {"Aminata N'DIAYE"}),  # a name being typed
        ("lefevre dup", {"Éloïse Lefèvre-Dupont"}),
        ("eloise lefevre dupont", {"Éloïse Lefèvre-Dupont"}),
        ("dupont lefevre", set()),  # the words of a name in their order
        ("n diaye awa", set()),  # every word must match the same person
        ("aminata lefevre", set()),
        ("camille dup", set()),
        ("'", set()),  # a query with no letter finds nobody
        ("- .", set()),
        ("%", set()),
    ],
)
def test_other_names_are_not_found(client, login, clinician, support, people, query, expected):
    login(clinician)
    assert by_clinician(client, query) == expected
    login(support)
    assert by_support(client, query) == expected


@pytest.mark.parametrize(
    ("first_names", "birth_name", "birth_date"),
    [
        ("Éloïse", "Dupont", ELOISE_BORN),  # whole names: Dupont is not Dupontel
        ("Éloïse", "Lefèvre", ELOISE_BORN),  # nor Lefèvre, Lefèvre-Dupont
        ("Aminata", "Diaye", NDIAYE_BORN),  # nor Diaye, N'Diaye
        ("Aminatou", "N’Diaye", NDIAYE_BORN),
        ("Aminata", "N’Diaye", datetime.date(2012, 7, 10)),
    ],
)
def test_registration_does_not_offer_other_people(
    client, login, clinician, team, people, first_names, birth_name, birth_date
):
    login(clinician)
    assert warned_of(client, team, first_names=first_names, birth_name=birth_name, birth_date=birth_date) == []


@pytest.mark.parametrize(
    ("first_names", "matches"),
    [("Jean Pierre", True), ("Jean Pierre Marie", True), ("JEAN-PIERRE", True), ("Jean", False), ("Jeanne", False)],
)
def test_first_names_typed_apart_are_tried_run_together(first_names, matches):
    """The first first name is compared, and the first names run together from it: a
    composed first name written with a space (« Jean Pierre ») is Jean-Pierre."""
    existing = Patient(first_name="Jean-Pierre", last_name="Le Gall", birth_name="Le Gall")
    assert existing.same_person_as(birth_name="LEGALL", first_names=first_names) is matches
    registered_apart = Patient(first_name="Jean", first_names="Jean Pierre", last_name="Le Gall")
    assert registered_apart.same_person_as(birth_name="Le Gall", first_names="Jean-Pierre")


@pytest.mark.parametrize(("family", "found"), [("N’Diaye", True), ("NDIAYE", True), ("n diaye", True),
                                                ("Diaye", False), ("N'DIAYES", False), (".", False)])  # fmt: skip
def test_the_fhir_patient_match_ignores_separators_too(team, support, people, family, found):
    """The INS and birth date exactly, the family name as names are matched. A family name
    that folds to nothing is not taken for a record with no birth name."""
    client, _secret = fhir.register_client(team=team, name="Logiciel", scopes=list(SCOPES), created_by=support)
    identity = FhirIdentity(ins=NDIAYE_INS, birth_date=NDIAYE_BORN, family=family)
    if found:
        assert fhir.match_patient(client=client, identity=identity) == people["ndiaye"]
    else:
        with pytest.raises(fhir.FhirError):
            fhir.match_patient(client=client, identity=identity)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("N'DIAYE", "ndiaye"), ("N’Diaye", "ndiaye"), ("Nʼ Diaye", "ndiaye"), ("N‘diaye", "ndiaye"), ("N`Diaye", "ndiaye"),
     ("Lefèvre‐Dupont", "lefevredupont"), ("LEFEVRE – DUPONT", "lefevredupont"), ("Lefèvre—Dupont", "lefevredupont"),
     ("St. Éloi", "steloi"), ("Le\u00a0Gall", "legall"), ("Müller", "muller")],
)  # fmt: skip
def test_folded_name(text, expected):
    assert folded_name(text) == expected


def test_the_migration_folds_the_names_already_kept_again(people):
    """Rows folded the old way (separators kept), merged records too, are folded anew."""
    migration = importlib.import_module("portal.accounts.migrations.0016_fold_name_separators")
    state = MigrationLoader(connection).project_state(("accounts", "0016_fold_name_separators"))
    ndiaye, eloise = people["ndiaye"], people["eloise"]
    Patient.objects.filter(pk=eloise.pk).update(
        birth_name="Lefèvre-Dupont", birth_folded="lefèvre-dupont", last_folded="lefevre-dupont"
    )
    Patient.objects.filter(pk=people["awa"].pk).update(merged_into=ndiaye, last_folded="di-aye")
    ndiaye.user._meta.model.objects.filter(pk=ndiaye.user.pk).update(last_folded="n'diaye", first_folded="x")
    migration.refold_names(state.apps, None)
    eloise.refresh_from_db()
    ndiaye.user.refresh_from_db()
    assert (eloise.first_folded, eloise.last_folded, eloise.birth_folded) == (
        "eloise",
        "lefevredupont",
        "lefevredupont",
    )
    assert (ndiaye.user.first_folded, ndiaye.user.last_folded) == ("aminata", "ndiaye")
    assert Patient.all_records.get(pk=people["awa"].pk).last_folded == "diaye"
