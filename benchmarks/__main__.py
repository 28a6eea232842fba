import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from benchmarks import exports, pages, support  # noqa: E402
from benchmarks.harness import throwaway_database  # noqa: E402

BENCHMARKS = {"pages": pages.run, "exports": exports.run, "support": support.run}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(BENCHMARKS)
    with throwaway_database():
        for name in chosen:
            BENCHMARKS[name]()
