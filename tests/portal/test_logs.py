"""No health data in logs: a request line's query string (a FHIR search by INS) is cut off."""

import logging
import os
import subprocess
import sys

import pytest

from portal.logs import NoQueryString

INS_QUERY = "/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|292047505612367&date=bad"


def test_a_logged_request_line_loses_its_query_string():
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s', (f"GET {INS_QUERY} HTTP/1.1", "400", "512"), None
    )
    assert NoQueryString().filter(record)
    assert record.getMessage() == '"GET /fhir/DocumentReference HTTP/1.1" 400 512'
    plain = logging.LogRecord("x", logging.WARNING, __file__, 1, f"Bad request: GET {INS_QUERY} HTTP/1.1", None, None)
    NoQueryString().filter(plain)
    assert "292047505612367" not in plain.getMessage() and "/fhir/DocumentReference" in plain.getMessage()


@pytest.mark.parametrize("debug", ["1", "0"])
def test_no_logger_of_the_configured_site_prints_a_query_string(debug):
    """As the site configures logging (development and production): the request lines the
    development server prints for a 4xx, and Django's own request warnings, reach the
    output without their query string, through whatever handler prints them."""
    script = (
        "import django, logging; django.setup(); "
        f"logging.getLogger('django.server').warning('\"%s\" %s %s', 'GET {INS_QUERY} HTTP/1.1', '401', '414'); "
        f"logging.getLogger('django.request').warning('Unauthorized: GET {INS_QUERY} HTTP/1.1'); "
        "logging.getLogger('django').error('Bad: GET %s HTTP/1.1', '" + INS_QUERY + "')"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "DEBUG": debug, "SECRET_KEY": "x" * 50,
           "ALLOW_DEVELOPMENT_KEYS": "1", "ALLOWED_HOSTS": "localhost"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    printed = done.stdout + done.stderr
    assert printed.count("/fhir/DocumentReference") == 3, printed
    assert "292047505612367" not in printed and "patient.identifier" not in printed
