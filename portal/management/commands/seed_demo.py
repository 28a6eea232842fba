"""Deterministic demo data. Running it twice changes nothing."""

import datetime

from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_email.models import EmailDevice

from messaging import services
from messaging.models import Conversation, Notification
from portal.accounts.models import Patient, User
from portal.careteams.models import CareLink, CareTeam, Membership

DEMO_PASSWORD = "carnet-demo-2026"
DEMO_DOMAIN = "demo.carnet.example"

TEAMS = [
    ("Cabinet médical des Lilas", CareTeam.Kind.PRACTICE, "sous 2 jours ouvrés"),
    ("Service de cardiologie — CHU de Lyon", CareTeam.Kind.HOSPITAL, "sous 5 jours ouvrés"),
    ("Pharmacie du Marché", CareTeam.Kind.PHARMACY, "dans la journée"),
]
# (patient index, team index, subject, kind, closed, [(author: "patient" or clinician index, body), ...])
CONVERSATIONS = [
    (
        0,
        0,
        "Renouvellement de mon traitement",
        "renewal",
        False,
        [
            ("patient", "Bonjour docteur, mon traitement pour la tension se termine la semaine prochaine."),
            (0, "Bonjour, je vous prépare l’ordonnance, elle sera dans vos documents demain."),
        ],
    ),
    (
        0,
        1,
        "Préparation de l’échographie cardiaque",
        "question",
        True,
        [
            ("patient", "Faut-il être à jeun pour l’échographie du 12 ?"),
            (2, "Non, aucune préparation n’est nécessaire. Pensez à apporter vos anciens examens."),
            ("patient", "Merci beaucoup."),
        ],
    ),
    (
        0,
        0,
        "Certificat pour le sport",
        "administrative",
        False,
        [
            ("patient", "Pourriez-vous me faire un certificat de non contre-indication à la course à pied ?"),
        ],
    ),
    (
        1,
        0,
        "Question sur ma prise de sang",
        "result",
        False,
        [
            ("patient", "Mon taux de cholestérol est indiqué comme élevé, dois-je m’inquiéter ?"),
        ],
    ),
]
# (first name, last name, email local part, team index)
CLINICIANS = [
    ("Claire", "Martin", "claire.martin", 0),
    ("Karim", "Benali", "karim.benali", 0),
    ("Sophie", "Lefèvre", "sophie.lefevre", 1),
    ("Thomas", "Girard", "thomas.girard", 2),
]
SUPPORT = ("Julie", "Moreau", "julie.moreau")
# (first name, last name, sex, birth date, has a login of their own)
PATIENTS = [
    ("Camille", "Durand", "female", (1984, 3, 12), True),
    ("Lucas", "Bernard", "male", (1991, 7, 2), True),
    ("Léa", "Durand", "female", (2016, 5, 23), False),
    ("Manon", "Petit", "female", (1978, 11, 30), True),
    ("Hugo", "Robert", "male", (1969, 1, 17), True),
    ("Chloé", "Richard", "female", (2001, 9, 8), False),
    ("Louis", "Dubois", "male", (1957, 4, 25), True),
    ("Emma", "Moreau", "female", (1995, 12, 3), False),
    ("Gabriel", "Laurent", "male", (1988, 6, 14), False),
    ("Inès", "Simon", "female", (1973, 2, 9), False),
    ("Jules", "Michel", "male", (1949, 8, 21), False),
    ("Sarah", "Lefebvre", "female", (1999, 10, 11), False),
    ("Nathan", "Leroy", "male", (1982, 3, 28), False),
    ("Jade", "Roux", "female", (1966, 7, 19), False),
    ("Arthur", "David", "male", (2010, 1, 6), False),
    ("Louise", "Bertrand", "female", (1938, 5, 15), False),
    ("Yanis", "Morel", "male", (1993, 11, 22), False),
    ("Alice", "Fournier", "female", (1987, 4, 4), False),
    ("Mohamed", "Girard", "male", (1976, 9, 29), False),
    ("Zoé", "Bonnet", "female", (2004, 6, 1), False),
]


def demo_email(local):
    return f"{local}@{DEMO_DOMAIN}"


def nir(index, sex, birth):
    """A well-formed (fictitious) NIR: sex, year, month, department 69, commune, order, key."""
    body = f"{1 if sex == 'male' else 2}{birth[0] % 100:02d}{birth[1]:02d}69123{index + 1:03d}"
    return f"{body}{97 - int(body) % 97:02d}"


class Command(BaseCommand):
    help = "Load deterministic demo data (idempotent) and print the demo logins."

    def _user(self, local, first, last, role):
        user, created = User.objects.get_or_create(
            email=demo_email(local), defaults={"first_name": first, "last_name": last, "role": role}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        # Every demo account passes the second factor with a code by email
        # (printed on the console in development).
        EmailDevice.objects.get_or_create(user=user, name="Email", defaults={"confirmed": True})
        return user

    def _conversations(self, patients, teams, clinicians):
        for patient_index, team_index, subject, kind, closed, thread in CONVERSATIONS:
            patient, team = patients[patient_index], teams[team_index]
            if Conversation.objects.filter(patient=patient, team=team, subject=subject).exists():
                continue
            authors = [patient.user if who == "patient" else clinicians[who] for who, _ in thread]
            conversation = services.start_conversation(
                author=authors[0], patient=patient, team=team, subject=subject, kind=kind, body=thread[0][1]
            )
            for author, (_, body) in zip(authors[1:], thread[1:], strict=True):
                services.send_message(author=author, conversation=conversation, body=body)
            if closed:
                services.set_conversation_status(actor=authors[1], conversation=conversation, status="closed")
            # Demo history, not news: nobody is emailed about it.
            Notification.objects.filter(message__conversation=conversation).update(status=Notification.Status.SKIPPED)

    @transaction.atomic
    def handle(self, *args, **options):
        teams = []
        for name, kind, reply_time in TEAMS:
            team, _ = CareTeam.objects.get_or_create(name=name, defaults={"kind": kind, "reply_time": reply_time})
            teams.append(team)
        clinicians = []
        for first, last, local, team_index in CLINICIANS:
            user = self._user(local, first, last, User.Role.CLINICIAN)
            Membership.objects.get_or_create(team=teams[team_index], user=user)
            clinicians.append(user)
        self._user(SUPPORT[2], SUPPORT[0], SUPPORT[1], User.Role.SUPPORT)

        patients = []
        for index, (first, last, sex, birth, has_login) in enumerate(PATIENTS):
            user = None
            if has_login:
                local = f"{first}.{last}".lower().replace("é", "e").replace("è", "e")
                user = self._user(local, first, last, User.Role.PATIENT)
            patient, _ = Patient.objects.get_or_create(
                ins=nir(index, sex, birth),
                defaults={
                    "user": user,
                    "first_name": first,
                    "last_name": last,
                    "sex": sex,
                    "birth_date": datetime.date(*birth),
                },
            )
            # Everyone sees the GP practice; every third patient the cardiology
            # department; every other one the pharmacy, which Lucas has blocked.
            links = {teams[0]: CareLink.Status.ACTIVE}
            if index % 3 == 0:
                links[teams[1]] = CareLink.Status.ACTIVE if index != 9 else CareLink.Status.ENDED
            if index % 2 == 1:
                links[teams[2]] = CareLink.Status.BLOCKED if index == 1 else CareLink.Status.ACTIVE
            for team, status in links.items():
                CareLink.objects.get_or_create(patient=patient, team=team, defaults={"status": status})
            patients.append(patient)

        self._conversations(patients, teams, clinicians)

        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        self.stdout.write(f"  patient    {demo_email('camille.durand')}")
        self.stdout.write(f"  patient    {demo_email('lucas.bernard')}")
        self.stdout.write(f"  clinician  {demo_email('claire.martin')}  (Cabinet médical des Lilas)")
        self.stdout.write(f"  clinician  {demo_email('sophie.lefevre')}  (cardiologie, CHU de Lyon)")
        self.stdout.write(f"  support    {demo_email(SUPPORT[2])}")
        self.stdout.write(
            "Second factor: on the page after the password, press the button that sends a code by email"
            " (« M’envoyer un code par e-mail »). In development the email, with its code, is printed"
            " in this console."
        )
