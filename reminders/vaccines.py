"""The French vaccination calendar, as far as reminders need it: the main childhood
doses and the adult boosters, each at the age it is due.

Source: « Calendrier des vaccinations et recommandations vaccinales 2025 », Ministère
du Travail, de la Santé, des Solidarités et des Familles (avril 2025),
https://sante.gouv.fr/prevention-en-sante/preserver-sa-sante/vaccination/calendrier-vaccinal
Kept to the doses everyone is due (no risk-group, travel or seasonal vaccination);
catch-up schedules are not modelled. Review this table when a new calendar is published.
"""

import datetime
from dataclasses import dataclass

from portal.accounts.models import folded

CALENDAR_SOURCE = "Calendrier des vaccinations et recommandations vaccinales 2025, Ministère de la Santé"
CALENDAR_YEAR = 2025

# Names (folded: lower case, no accents) that a vaccination written in the profile may
# carry, brand or disease, per family of vaccine.
DIPHTHERIA_TETANUS_POLIO = (
    "dtp", "dtca", "dtcap", "dtpolio", "diphterie", "tetanos", "polio", "revaxis", "repevax", "boostrix",
    "infanrix", "hexyon", "vaxelis", "tetravac", "hexa", "penta",
)  # fmt: skip
PNEUMOCOCCUS = ("pneumo", "prevenar", "vaxneuvance", "capvaxive")
MENINGOCOCCUS_B = ("menb", "meningocoque b", "bexsero", "trumenba")
MENINGOCOCCUS_ACWY = ("acwy", "nimenrix", "menquadfi", "menveo")
MEASLES_MUMPS_RUBELLA = ("ror", "rougeole", "oreillons", "rubeole", "priorix", "mmr")
PAPILLOMAVIRUS = ("hpv", "papillomavirus", "gardasil", "cervarix")


@dataclass(frozen=True)
class Dose:
    """One dose of the calendar: due at ``years`` + ``months`` of age; a vaccination of
    the family given from ``counts_from_months`` before that age counts for it."""

    code: str
    years: int
    months: int
    names: tuple[str, ...]
    counts_from_months: int

    def due_on(self, birth_date: datetime.date) -> datetime.date:
        return add_months(birth_date, self.years * 12 + self.months)

    def counts_from(self, birth_date: datetime.date) -> datetime.date:
        return add_months(birth_date, max(0, self.years * 12 + self.months - self.counts_from_months))

    def given_by(self, vaccine: str) -> bool:
        name = folded(vaccine)
        return any(word in name for word in self.names)


def add_months(day: datetime.date, months: int) -> datetime.date:
    """``day`` ``months`` later; the 29-31st of a shorter month becomes its last day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


CALENDAR = (
    # Infants: hexavalent (diphtheria, tetanus, pertussis, polio, Hib, hepatitis B) at 2, 4, 11 months.
    Dose("dtcap-hib-hepb-2m", 0, 2, DIPHTHERIA_TETANUS_POLIO, 1),
    Dose("dtcap-hib-hepb-4m", 0, 4, DIPHTHERIA_TETANUS_POLIO, 1),
    Dose("dtcap-hib-hepb-11m", 0, 11, DIPHTHERIA_TETANUS_POLIO, 3),
    Dose("pneumo-2m", 0, 2, PNEUMOCOCCUS, 1),
    Dose("pneumo-4m", 0, 4, PNEUMOCOCCUS, 1),
    Dose("pneumo-11m", 0, 11, PNEUMOCOCCUS, 3),
    Dose("menb-3m", 0, 3, MENINGOCOCCUS_B, 1),
    Dose("menb-5m", 0, 5, MENINGOCOCCUS_B, 1),
    Dose("menb-12m", 1, 0, MENINGOCOCCUS_B, 2),
    # Meningococcus ACWY replaces C from 2025, at 6 and 12 months.
    Dose("menacwy-6m", 0, 6, MENINGOCOCCUS_ACWY, 1),
    Dose("menacwy-12m", 1, 0, MENINGOCOCCUS_ACWY, 2),
    Dose("ror-12m", 1, 0, MEASLES_MUMPS_RUBELLA, 2),
    Dose("ror-16m", 1, 4, MEASLES_MUMPS_RUBELLA, 3),
    # Children and teenagers.
    Dose("dtcap-6y", 6, 0, DIPHTHERIA_TETANUS_POLIO, 12),
    Dose("dtcap-11y", 11, 0, DIPHTHERIA_TETANUS_POLIO, 24),
    Dose("hpv-11y", 11, 0, PAPILLOMAVIRUS, 12),
    Dose("menacwy-11y", 11, 0, MENINGOCOCCUS_ACWY, 12),
    # Adults: diphtheria, tetanus, polio (with pertussis at 25) at 25, 45, 65, then every 10 years.
    Dose("dtp-25y", 25, 0, DIPHTHERIA_TETANUS_POLIO, 24),
    Dose("dtp-45y", 45, 0, DIPHTHERIA_TETANUS_POLIO, 24),
    Dose("dtp-65y", 65, 0, DIPHTHERIA_TETANUS_POLIO, 24),
    Dose("dtp-75y", 75, 0, DIPHTHERIA_TETANUS_POLIO, 24),
    Dose("dtp-85y", 85, 0, DIPHTHERIA_TETANUS_POLIO, 24),
    Dose("dtp-95y", 95, 0, DIPHTHERIA_TETANUS_POLIO, 24),
)
