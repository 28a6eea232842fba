"""Code systems shared by the FHIR API (fhir_api) and the archive's FHIR bundle: one
rule each for LOINC, UCUM and the INS, so what comes in and what goes out agree."""

import re

from django.conf import settings

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
INS_NIR_OID = "urn:oid:1.2.250.1.213.1.4.8"
INS_NIR_TEST_OID = "urn:oid:1.2.250.1.213.1.4.10"  # fictitious NIRs (tests, demonstrations)
INS_TYPE = {"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "INS-NIR"}
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def loinc_is_valid(code: str) -> bool:
    """A LOINC code: digits, a dash, and the check digit (mod 10, Luhn) of the digits."""
    match = re.fullmatch(r"([0-9]{1,7})-([0-9])", code or "")
    if not match:
        return False
    digits, check = match.group(1), int(match.group(2))
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10 == check


# UCUM's case-sensitive syntax, roughly: letters, digits and UCUM's operators and
# brackets (. / ( ) [ ] * ^ % ' _ + -), and annotations in braces ({1.73_m2}), which
# hold any printable character but braces. A syntax check, not a unit dictionary ("µg/L"
# and "<b>" fail; "ug/L", "10*9/L", "mm[Hg]" pass).
_UCUM_SYNTAX = re.compile(r"(?:[A-Za-z0-9./()\[\]*^%'_+\-]|\{[!-z|~]*\})+")


def ucum_is_well_formed(code: str) -> bool:
    return len(code or "") <= 32 and bool(_UCUM_SYNTAX.fullmatch(code or ""))


def ins_identifier(nir: str) -> dict:
    """The INS as FR Core has it: type INS-NIR, use official, the NIR OID (the test OID
    when INS_TEST_IDENTITIES says the NIRs are fictitious)."""
    return {
        "use": "official",
        "type": {"coding": [INS_TYPE]},
        "system": INS_NIR_TEST_OID if settings.INS_TEST_IDENTITIES else INS_NIR_OID,
        "value": nir,
    }
