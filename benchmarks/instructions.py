"""The pages' CPU instructions per request, counted by valgrind (callgrind): a figure the
machine's load does not move, where the CPU per request of ``pages`` swings by a fifth
between runs on a shared machine. Only the web process's instructions, as production
runs it (``DEBUG=0``, the bench's settings), in-process through Django's test client:
the database's work and gunicorn's are not in them; ``pages`` measures those.

The bench seeds the pages' data, then runs this module as a second process under
``valgrind --tool=callgrind --instr-atstart=no``: it requests each page a few times, then
counts ``REQUESTS`` requests between ``callgrind_control`` marks (zero, on, dump, off).
``PYTHONHASHSEED=0``: the same count for the same code at every run (but a page moves by
up to half a million with the pages measured before it)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

REQUESTS, WARMUP = 8, 3


def run():
    from benchmarks import pages, server
    from benchmarks.harness import load_average

    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("\n## Instructions: not counted (valgrind is not installed)")
        return
    as_patient, rows = pages.seed_pages()
    rows = [("floor (b): the floor view, signed in", as_patient, "/bench/floor/"), *rows]
    with TemporaryDirectory() as out:
        plan = Path(out, "plan.json")
        plan.write_text(json.dumps([[f"page{index}", server.cookie_of(client), url] for index, (_, client, url) in
                                    enumerate(rows)]))  # fmt: skip
        env = {**server.production_environment(hosts="testserver"), "PYTHONHASHSEED": "0"}
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/cg.out",
                   sys.executable, "-m", "benchmarks.instructions", str(plan)]  # fmt: skip
        print(f"\n{load_average()} (before; instructions do not depend on it)")
        subprocess.run(command, cwd=server.ROOT, env=env, check=True, capture_output=True)  # noqa: S603
        counted = dict(_counted(dump) for dump in Path(out).glob("cg.out.*"))
    floor = counted["page0"]
    print(f"\n## Instructions per request (millions; callgrind, {REQUESTS} requests after {WARMUP}, in-process)")
    print(f"{'what':<58} {'instructions':>12} {'x floor (b)':>11}")
    for index, (name, _client, _url) in enumerate(rows):
        print(f"{name:<58} {counted[f'page{index}'] / 1e6:>12.2f} {counted[f'page{index}'] / floor:>11.2f}")


def _counted(dump: Path) -> tuple[str, float]:
    """(page, instructions per request) from a dump's header: its trigger ("dump pageN")
    and its summary, the instructions counted between the marks."""
    name = total = None
    with dump.open() as lines:
        for line in lines:
            if line.startswith("desc: Trigger:"):
                name = line.split()[-1]
            elif line.startswith("summary:"):
                total = int(line.split()[1])
                break
    return name, total / REQUESTS


def _count(plan: Path):
    """In the process valgrind runs: each page of ``plan`` requested, then counted."""
    import django

    django.setup()
    from django.test import Client

    pid = str(os.getpid())
    client = Client()

    def control(*arguments):
        subprocess.run(["callgrind_control", *arguments, pid], check=True, capture_output=True)  # noqa: S603, S607

    for name, cookie, url in json.loads(plan.read_text()):
        for _ in range(WARMUP):
            if client.get(url, HTTP_COOKIE=cookie).status_code != 200:
                raise RuntimeError(f"{url} did not answer 200")
        control("-z")
        control("-i", "on")
        for _ in range(REQUESTS):
            client.get(url, HTTP_COOKIE=cookie)
        control("-d", name)
        control("-i", "off")


if __name__ == "__main__":
    _count(Path(sys.argv[1]))
