import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
# Its own throwaway SQLite file: a test run meanwhile must not drop the bench's tables.
os.environ.setdefault("TEST_SQLITE_NAME", os.path.join(os.path.dirname(__file__), os.pardir, "var", "bench.sqlite3"))
django.setup()

from benchmarks import careteams, exports, fhir, instructions, pages, reminders, support  # noqa: E402
from benchmarks.harness import throwaway_database  # noqa: E402

BENCHMARKS = {
    "pages": pages.run,
    "floors": pages.run_floors,
    "exports": exports.run,
    "support": support.run,
    "careteams": careteams.run,
    "fhir": fhir.run,
    "reminders": reminders.run,
    "instructions": instructions.run,
}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(BENCHMARKS)
    with throwaway_database():
        for name in chosen:
            BENCHMARKS[name]()
