import datetime
from functools import cache

import factory
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from portal.accounts.models import Patient, User
from portal.careteams.models import CareLink, CareTeam, Membership

PASSWORD = "correct horse battery staple"


@cache
def password_hash() -> str:
    """PASSWORD hashed once per process with the real hasher (Argon2 takes ~0.1 s a hash)."""
    return make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    first_name = factory.Faker("first_name", locale="fr_FR")
    last_name = factory.Faker("last_name", locale="fr_FR")
    role = User.Role.PATIENT
    password = factory.LazyFunction(password_hash)

    @factory.post_generation
    def terms(self, create, extracted, **kwargs):
        """People of the tests have accepted the terms of use in force, unless
        ``terms=False``: the terms page has tests of its own."""
        if create and extracted is not False:
            from django.conf import settings

            from portal.models import TermsAcceptance

            TermsAcceptance.objects.create(user=self, version=settings.TERMS_VERSION)


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    user = factory.SubFactory(UserFactory, role=User.Role.PATIENT)
    first_name = factory.LazyAttribute(lambda o: o.user.first_name if o.user else "Léa")
    last_name = factory.LazyAttribute(lambda o: o.user.last_name if o.user else "Sans-Compte")
    birth_date = datetime.date(1985, 6, 15)
    sex = Patient.Sex.FEMALE


class CareTeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CareTeam

    name = factory.Sequence(lambda n: f"Cabinet médical n°{n}")
    kind = CareTeam.Kind.PRACTICE


class ClinicianFactory(UserFactory):
    role = User.Role.CLINICIAN

    @factory.post_generation
    def teams(self, create, extracted, **kwargs):
        for team in extracted or ():
            Membership.objects.create(team=team, user=self)


class CareLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CareLink

    patient = factory.SubFactory(PatientFactory)
    team = factory.SubFactory(CareTeamFactory)
    status = CareLink.Status.ACTIVE


class AppointmentFactory(factory.django.DjangoModelFactory):
    """An appointment of ``team`` with ``patient`` (linked by the caller when access
    matters), next week at 10:00 Paris time, 30 minutes, in person."""

    class Meta:
        model = "agenda.Appointment"

    patient = factory.SubFactory(PatientFactory)
    team = factory.SubFactory(CareTeamFactory)
    starts_at = factory.LazyFunction(
        lambda: timezone.localtime().replace(hour=10, minute=0, second=0, microsecond=0) + datetime.timedelta(days=7)
    )
    duration_minutes = 30
    ends_at = factory.LazyAttribute(
        lambda o: o.starts_at.astimezone(datetime.UTC) + datetime.timedelta(minutes=o.duration_minutes)
    )
    place = "12 rue des Lilas, 75020 Paris"
    with_whom = "Dr Claire Martin"
    instructions = "Venir à jeun."
    created_by = factory.SubFactory(ClinicianFactory)
