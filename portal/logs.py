"""Logging filters: what Carnet's logs never hold."""

import logging
import re

# A path with its query: " /path?query" (a request line), or a path alone as an argument.
# The query is cut off, the path and the rest kept.
_QUERY = re.compile(r"((?:^|\s|\")/[^\s?\"]*)\?[^\s\"]*")


class NoQueryString(logging.Filter):
    """Cut query strings out of logged request lines: a FHIR search puts a patient's INS
    there, and URLs are not the place for health data (nor, then, the logs). The message
    is checked as it will be printed (its arguments put in), whatever composed it."""

    def filter(self, record):
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = _QUERY.sub(r"\1", message), None
        return True
