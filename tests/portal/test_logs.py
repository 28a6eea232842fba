"""No health data in logs: a request line's query string (a FHIR search by INS) is cut off."""

import logging

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


def test_the_console_handler_uses_it(settings):
    assert "no_query_string" in settings.LOGGING["handlers"]["console"]["filters"]
