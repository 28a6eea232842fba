"""Logging filters: what Carnet's logs never hold."""

import logging
import re

# A request line as the development server (django.server) and some others log it:
# "GET /path?query HTTP/1.1"; the query is cut off, the path and the rest kept.
_QUERY = re.compile(r"(\s/[^\s?]*)\?\S*")


class NoQueryString(logging.Filter):
    """Cut query strings out of logged request lines: a FHIR search puts a patient's INS
    there, and URLs are not the place for health data (nor, then, the logs)."""

    def filter(self, record):
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(_QUERY.sub(r"\1", arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.msg, str) and "?" in record.msg:
            record.msg = _QUERY.sub(r"\1", record.msg)
        return True
