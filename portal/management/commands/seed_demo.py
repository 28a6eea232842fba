"""Deterministic demo data. Running it twice changes nothing."""

import datetime
import random
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django_otp.plugins.otp_email.models import EmailDevice

from agenda.models import Appointment
from messaging import services
from messaging.models import Conversation, Notification, ReplyTemplate
from portal import access
from portal.accounts.models import InsKind, Patient, Representation, User, nir_key
from portal.audit.models import AccessLog
from portal.careteams.models import CareLink, CareTeam, Membership
from records import services as services_records
from records.models import Allergy, Condition, Digest, LabReport, Measurement, News, Prescription, Vaccination

DEMO_PASSWORD = "carnet-demo-2026"
DEMO_DOMAIN = "demo.carnet.example"

TEAMS = [
    ("Cabinet médical des Lilas", CareTeam.Kind.PRACTICE, 2),  # reply time in working days
    ("Service de cardiologie — CHU de Lyon", CareTeam.Kind.HOSPITAL, 5),
    ("Pharmacie du Marché", CareTeam.Kind.PHARMACY, 0),  # the same day
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
# The first clinician of each team manages it (its settings: the cancellation notice).
MANAGERS = {"claire.martin", "sophie.lefevre", "thomas.girard"}
# (patient index, team index, days from today, time, minutes, with whom, place or None for a video link, instructions)
APPOINTMENTS = [
    (0, 0, 3, (9, 30), 20, "Dr Claire Martin", "Cabinet médical des Lilas, 12 rue des Lilas, Lyon 3e", ""),
    (0, 1, 12, (14, 0), 45, "Dr Sophie Lefèvre", "CHU de Lyon, bâtiment B, 2e étage", "Apporter vos derniers ECG."),
    (0, 0, -20, (11, 0), 20, "Dr Karim Benali", "Cabinet médical des Lilas, 12 rue des Lilas, Lyon 3e", ""),
    (1, 0, 1, (17, 15), 20, "Dr Claire Martin", None, ""),
    (3, 0, 0, (10, 0), 30, "Dr Claire Martin", "Cabinet médical des Lilas, 12 rue des Lilas, Lyon 3e", "Venir à jeun."),
    (3, 1, 5, (8, 30), 60, "Dr Sophie Lefevre", "CHU de Lyon, bâtiment B, 2e étage", "Venir à jeun."),
]
# (first name, last name, sex, birth date, has a login of their own)
PATIENTS = [
    ("Camille", "Durand", "female", (1984, 3, 12), True),  # born Martin: Durand is her used name
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


CENT = Decimal("0.01")
LAB_TESTS = [
    ("718-7", "Hémoglobine", "g/dL", Decimal("12"), Decimal("16")),
    ("2345-7", "Glucose à jeun", "g/L", Decimal("0.70"), Decimal("1.10")),
    ("2160-0", "Créatinine", "mg/L", Decimal("6"), Decimal("12")),
    ("2093-3", "Cholestérol total", "g/L", Decimal("1.50"), Decimal("2.00")),
    ("3016-3", "TSH", "mUI/L", Decimal("0.40"), Decimal("4.00")),
]
# medication, dosage, frequency, started (days ago), ended (days ago or None), renewable
PRESCRIPTIONS = [
    ("Ramipril 5 mg", "1 comprimé", "le matin", 400, None, True),
    ("Atorvastatine 10 mg", "1 comprimé", "le soir", 300, None, True),
    ("Amoxicilline 1 g", "1 comprimé", "3 fois par jour pendant 7 jours", 120, 113, False),
    ("Paracétamol 1 g", "1 comprimé", "si douleur, 3 fois par jour au plus", 20, None, False),
]
# A child's (Léa, 10; Arthur, 16): no statin nor adult panel in a minor's demo record.
CHILD_LAB_TESTS = [
    ("718-7", "Hémoglobine", "g/dL", Decimal("11.5"), Decimal("15.5")),
    ("2276-4", "Ferritine", "µg/L", Decimal("15"), Decimal("150")),
]
CHILD_PRESCRIPTIONS = [
    ("Salbutamol 100 µg, inhalateur", "2 bouffées", "si gêne respiratoire", 300, None, True),
    ("Amoxicilline 250 mg/5 mL, suspension buvable", "1 dose-poids", "2 fois par jour pendant 6 jours", 90, 84, False),
    ("Paracétamol 300 mg", "1 sachet", "si fièvre, 4 fois par jour au plus", 20, None, False),
]
CHILD_VACCINATIONS = [
    ("ROR (rougeole, oreillons, rubéole), 2e dose", 16, "R1702"),
    ("Méningocoque C", 12, "M0913"),
    ("DTCaPolio (rappel des 6 ans)", 72, "X2250"),
]
ALLERGIES = [
    {"substance": "Pénicilline", "reaction": "Urticaire", "severity": "moderate"},
    {"substance": "Arachide", "reaction": "Œdème de Quincke", "severity": "severe"},
    {"substance": "Pollens de graminées", "reaction": "Rhinite", "severity": "mild"},
]
CONDITIONS = [
    {"name": "Hypertension artérielle", "since": datetime.date(2019, 4, 1)},
    {"name": "Asthme", "since": datetime.date(2005, 9, 1)},
    {"name": "Appendicectomie", "since": datetime.date(2012, 6, 15), "notes": "Sans complication"},
]
VACCINATIONS = [
    ("DTCaPolio (rappel)", datetime.date(2024, 3, 12), "X4521"),
    ("Grippe saisonnière", datetime.date(2025, 10, 20), "G2025-118"),
]
DOCUMENTS = [
    ("Compte rendu de consultation", "report", 40),
    ("Ordonnance", "prescription", 40),
]
# Reads of Camille's record by her care teams, for her access history: (clinician index, action, target).
READS = [
    (0, AccessLog.Action.VIEW_RECORD, ""),
    (0, AccessLog.Action.VIEW_DOCUMENT, "Compte rendu de consultation"),
    (0, AccessLog.Action.VIEW_RESULTS, "Glucose à jeun"),  # one of LAB_TESTS
    (2, AccessLog.Action.VIEW_RECORD, ""),
    (2, AccessLog.Action.DOWNLOAD_DOCUMENT, "Ordonnance"),
]
# Each team's canned replies: (team index, title, text between the greeting and the closing).
REPLY_TEMPLATES = [
    (0, "Prendre rendez-vous", "Pour en parler, prenez rendez-vous au cabinet au 04 00 00 00 00 ou en ligne."),
    (0, "Résultats normaux", "Vos résultats sont dans les valeurs habituelles : rien à faire de plus."),
    (
        0,
        "Renouvellement d’ordonnance",
        "Votre ordonnance renouvelée est dans vos documents : présentez-la en pharmacie.",
    ),
    (1, "Consultation de suivi", "Le secrétariat du service vous appellera pour fixer votre consultation de suivi."),
    (1, "Avant un examen", "Venez à jeun, avec votre carte Vitale et vos derniers résultats."),
]


def demo_pdf(title, patient):
    """A small real PDF for the demo documents."""
    from weasyprint import HTML

    html = render_to_string("records/demo_document.html", {"title": title, "patient": patient})
    return HTML(string=html).write_pdf()


def demo_email(local):
    return f"{local}@{DEMO_DOMAIN}"


def nir(index, sex, birth):
    """A well-formed (fictitious) NIR: sex, year, month, department 69, commune, order, key.
    Registered with the test OID: demo data is never a real person's identity."""
    body = f"{1 if sex == 'male' else 2}{birth[0] % 100:02d}{birth[1]:02d}69123{index + 1:03d}"
    return body + nir_key(body)


# The INS identity traits: (birth name, first names at birth, used name), by patient index.
IDENTITIES = {0: ("Martin", "Camille Anne", "Durand"), 3: ("Petit", "Manon Élise", ""), 4: ("Robert", "Hugo Jean", "")}
LINKS_SINCE = datetime.date(2021, 9, 1)
CARDIOLOGY_ENDED_ON = datetime.date(2026, 6, 30)


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
        # As for an invitee: the address is known to reach its holder.
        EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
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

    def _records(self, index, patient, teams, clinicians):
        """Two years of plausible records; skipped for a patient who already has some."""
        if LabReport.objects.filter(patient=patient).exists():
            return
        rng = random.Random(index)
        gp, team = clinicians[index % 2], teams[0]
        today = datetime.date(2026, 11, 1)
        age = (today - patient.birth_date).days // 365
        child = age < 18
        lab_tests, prescriptions = (CHILD_LAB_TESTS, CHILD_PRESCRIPTIONS) if child else (LAB_TESTS, PRESCRIPTIONS)
        for months_ago in (24, 12, 1) if child else (24, 18, 12, 6, 1):
            day = today - datetime.timedelta(days=30 * months_ago)
            services_records.add_lab_report(
                author=gp,
                team=team,
                patient=patient,
                title="Bilan sanguin",
                collected_on=day,
                observations=[
                    {"loinc": loinc, "name": name, "unit": unit, "low": low, "high": high,
                     "value": Decimal(str(rng.uniform(float(low) * 0.85, float(high) * 1.15))).quantize(CENT)}
                    for loinc, name, unit, low, high in lab_tests
                ],
            )  # fmt: skip
        Prescription.objects.bulk_create(
            [
                Prescription(patient=patient, medication=medication, dosage=dosage, frequency=frequency,
                             start_date=today - datetime.timedelta(days=start),
                             end_date=end and today - datetime.timedelta(days=end),
                             renewable=renewable, prescriber=gp, team=team,
                             route="inhaled" if "inhalateur" in medication else "oral")
                for medication, dosage, frequency, start, end, renewable in prescriptions[index % 2 :][:3]
            ]
        )  # fmt: skip
        Allergy.objects.create(patient=patient, author=gp, team=team, **ALLERGIES[index % len(ALLERGIES)])
        condition = CONDITIONS[index % len(CONDITIONS)]
        if child:  # asthma since the age of 4, not an adult's history
            condition = {"name": "Asthme", "since": patient.birth_date + datetime.timedelta(days=4 * 365 + 1)}
        Condition.objects.create(patient=patient, author=gp, team=team, **condition)
        vaccinations = VACCINATIONS
        if child:  # given at the age in months each says
            vaccinations = [
                (vaccine, patient.birth_date + datetime.timedelta(days=months * 30), lot)
                for vaccine, months, lot in CHILD_VACCINATIONS
            ]
        for vaccine, date, lot in vaccinations:
            Vaccination.objects.create(patient=patient, author=gp, team=team, vaccine=vaccine, date=date, lot=lot)
        # A child's weight grows with them (about 3 kg a year); an adult's moves around one value.
        weight = Decimal(8 + 3 * age + rng.randint(0, 4)) if child else Decimal(60 + rng.randint(0, 25))
        Measurement.objects.bulk_create(
            [
                Measurement(patient=patient, author=patient.user or gp, team=None if patient.user else team,
                            kind="weight", value=weight + Decimal(rng.randint(-20, 20)) / 10,
                            measured_on=today - datetime.timedelta(days=30 * m))
                for m in range(24, -1, -1)  # monthly for two years: more than the profile shows
            ]
            + [
                Measurement(patient=patient, author=gp, team=team, kind="blood_pressure",
                            value=Decimal(rng.randint(95, 115) if child else rng.randint(115, 145)),
                            value2=Decimal(rng.randint(55, 70) if child else rng.randint(70, 90)),
                            measured_on=today - datetime.timedelta(days=90 * q))
                for q in range(8, -1, -1)
            ]
        )  # fmt: skip
        if patient.user is not None:
            for title, category, days_ago in DOCUMENTS:
                services_records.upload_document(
                    author=gp,
                    patient=patient,
                    upload=SimpleUploadedFile("demo.pdf", demo_pdf(title, patient)),
                    title=title,
                    category=category,
                    care_date=today - datetime.timedelta(days=days_ago),
                    team=team,
                )

    def _appointments(self, patients, teams, clinicians):
        """Appointments around today (the demo's day), for patients who have none yet."""
        booked = set(Appointment.objects.values_list("patient_id", flat=True))
        for index, team_index, days, (hour, minute), minutes, whom, place, instructions in APPOINTMENTS:
            patient, team = patients[index], teams[team_index]
            if (
                patient.pk in booked
                or not CareLink.objects.filter(patient=patient, team=team, status="active").exists()
            ):
                continue
            day = timezone.localdate() + datetime.timedelta(days=days)
            appointment = Appointment(
                patient=patient, team=team, created_by=clinicians[0 if team_index == 0 else 2], with_whom=whom,
                mode="in_person" if place else "video", place=place or "",
                video_url="" if place else "https://visio.demo.carnet.example/salle/lilas-2",
                instructions=instructions,
            )  # fmt: skip
            start = datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=timezone.get_current_timezone())
            appointment.set_times(start, minutes)
            appointment.save()

    def _history_is_not_news(self, shown):
        """Demo history is nobody's news: no digest email goes out, and only the newest
        document of ``shown`` (Camille) keeps its "new" marker, for the demo."""
        for digest in Digest.objects.filter(status=Digest.Status.PENDING, user__email__endswith=f"@{DEMO_DOMAIN}"):
            News.objects.filter(patient__user=digest.user, digest__isnull=True).update(digest=digest)
            digest.status = Digest.Status.SKIPPED
            digest.save(update_fields=["status"])
        keep = News.objects.filter(patient=shown, kind=News.Kind.DOCUMENT).order_by("-pk").values("pk")[:1]
        News.objects.unseen().filter(patient__user__email__endswith=f"@{DEMO_DOMAIN}").exclude(pk__in=keep).update(
            seen_at=timezone.now()
        )
        News.objects.unseen().filter(patient__user__isnull=True).update(seen_at=timezone.now())

    def _access_history_and_reply_templates(self, camille, teams, clinicians):
        """Camille's access history shows her teams' reads; each team has canned replies."""
        if not AccessLog.objects.filter(patient=camille, actor_role=User.Role.CLINICIAN).exists():
            for clinician_index, action, target in READS:
                access.trace_read(clinicians[clinician_index], camille, action, target)
        for team_index, title, body in REPLY_TEMPLATES:
            body = f"Bonjour,\n\n{body}\n\nBien cordialement,"
            ReplyTemplate.objects.get_or_create(team=teams[team_index], title=title, defaults={"body": body})

    @transaction.atomic
    def handle(self, *args, **options):
        teams = []
        for name, kind, reply_days in TEAMS:
            team, _ = CareTeam.objects.get_or_create(name=name, defaults={"kind": kind, "reply_days": reply_days})
            teams.append(team)
        clinicians = []
        for first, last, local, team_index in CLINICIANS:
            user = self._user(local, first, last, User.Role.CLINICIAN)
            Membership.objects.update_or_create(
                team=teams[team_index], user=user, defaults={"is_manager": local in MANAGERS}
            )
            clinicians.append(user)
        self._user(SUPPORT[2], SUPPORT[0], SUPPORT[1], User.Role.SUPPORT)

        patients = []
        for index, (first, last, sex, birth, has_login) in enumerate(PATIENTS):
            user = None
            if has_login:
                local = f"{first}.{last}".lower().replace("é", "e").replace("è", "e")
                user = self._user(local, first, last, User.Role.PATIENT)
            patient = Patient.objects.filter(ins=nir(index, sex, birth)).first()
            if patient is None:
                patient = Patient(ins=nir(index, sex, birth), user=user, sex=sex, birth_date=datetime.date(*birth))
            if not patient.ins_oid:  # also fills in the identity of a demo made before it existed
                birth_name, first_names, used_name = IDENTITIES.get(index, (last, first, ""))
                patient.set_identity(birth_name=birth_name, first_names=first_names, used_name=used_name)
                patient.ins_oid, patient.birth_place = InsKind.TEST_NIR, "69123"
                patient.save()
            # Everyone sees the GP practice; every third patient the cardiology
            # department; every other one the pharmacy, which Lucas has blocked.
            links = {teams[0]: CareLink.Status.ACTIVE}
            if index % 3 == 0:
                links[teams[1]] = CareLink.Status.ACTIVE if index != 9 else CareLink.Status.ENDED
            if index % 2 == 1:
                links[teams[2]] = CareLink.Status.BLOCKED if index == 1 else CareLink.Status.ACTIVE
            for team, status in links.items():
                ended_on = CARDIOLOGY_ENDED_ON if status == CareLink.Status.ENDED else None
                CareLink.objects.get_or_create(
                    patient=patient,
                    team=team,
                    defaults={"status": status, "started_on": LINKS_SINCE, "ended_on": ended_on},
                )
            patients.append(patient)

        # Camille holds parental authority over her daughter Léa, who has no login: the
        # record switcher (« Mon dossier · Léa »), in the demo.
        Representation.objects.get_or_create(
            patient=patients[2],
            representative=patients[0].user,
            ended_at=None,
            defaults={"kind": Representation.Kind.PARENT, "proof": Representation.Proof.BIRTH_CERTIFICATE},
        )

        self._conversations(patients, teams, clinicians)
        self._appointments(patients, teams, clinicians)
        for index, patient in enumerate(patients):
            self._records(index, patient, teams, clinicians)
        self._history_is_not_news(patients[0])
        self._access_history_and_reply_templates(patients[0], teams, clinicians)

        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        self.stdout.write(f"  patient    {demo_email('camille.durand')}  (and parent of Léa: the record switcher)")
        self.stdout.write(f"  patient    {demo_email('lucas.bernard')}")
        self.stdout.write(f"  clinician  {demo_email('claire.martin')}  (Cabinet médical des Lilas)")
        self.stdout.write(f"  clinician  {demo_email('sophie.lefevre')}  (cardiologie, CHU de Lyon)")
        self.stdout.write(f"  support    {demo_email(SUPPORT[2])}")
        self.stdout.write(
            "Second factor: on the page after the password, press the button that sends a code by email"
            " (« M’envoyer un code par e-mail »). In development the email, with its code, is printed"
            " in this console."
        )
