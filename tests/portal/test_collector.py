"""A web worker freezes its long-lived objects once its first request has loaded them
(portal.collector, from portal.wsgi): a full collection then walks only what requests
make, not the 160,000 objects of Django, the templates and the translations."""

import json
import os
import subprocess
import sys
from pathlib import Path

WORKER = """
import gc, io, json, sys
import portal.wsgi
before = gc.get_freeze_count()
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/help/", "SERVER_NAME": "localhost", "SERVER_PORT": "443",
           "HTTP_HOST": "localhost", "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr}
statuses = []
response = portal.wsgi.application(environ, lambda status, headers, *rest: statuses.append(status))
b"".join(response)
response.close()  # what the server does when the response is sent: request_finished
print(json.dumps({"status": statuses[0], "at_import": before, "after_first": gc.get_freeze_count(),
                  "walked": len(gc.get_objects())}))
"""


def test_a_worker_freezes_what_its_first_request_loaded():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "ALLOWED_HOSTS": "localhost"}
    done = subprocess.run(
        [sys.executable, "-c", WORKER], cwd=Path(__file__).resolve().parents[2], env=env,
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["status"].startswith("200"), figures
    assert figures["at_import"] > 20_000  # Django and Carnet's code, frozen at start
    assert figures["after_first"] > figures["at_import"]  # and what the first request loaded
    assert figures["walked"] < figures["after_first"] / 10, figures  # what a full collection still walks
