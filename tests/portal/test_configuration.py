"""A misconfigured environment fails at start with one clear line; production settings pass check --deploy."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = "k1:" + base64.b64encode(b"k" * 32).decode()


def manage(*args, **env):
    # A clean environment: nothing of the test run's own settings leaks in.
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DEBUG": "0"}, "SECRET_KEY"),
        ({"DEBUG": "1", "DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
        ({"DEBUG": "1", "DATABASE_URL": "postgres://localhost:5432"}, "DATABASE_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DEBUG": "0", "SECRET_KEY": "s" * 50, "DOCUMENT_KEYS": KEYS, "EMAIL_PORT": "twenty-five"}, "EMAIL_PORT"),
        ({"DEBUG": "0", "SECRET_KEY_FILE": "/nonexistent/secret"}, "SECRET_KEY_FILE"),
        ({"DEBUG": "0", "SECRET_KEY": "s" * 50}, "DOCUMENT_KEYS"),
        ({"DEBUG": "0", "SECRET_KEY": "s" * 50, "DOCUMENT_KEYS": "k1:not-base64!"}, "DOCUMENT_KEYS"),
        ({"DEBUG": "0", "SECRET_KEY": "s" * 50, "DOCUMENT_KEYS": "k1:c2hvcnQ="}, "DOCUMENT_KEYS"),
    ],
)
def test_bad_environment_fails_with_one_line_naming_the_variable(env, variable):
    result = manage("check", **env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_secret_key_can_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("a-long-secret-read-from-a-file-" + "x" * 40 + "\n")
    result = manage("check", DEBUG="0", SECRET_KEY_FILE=str(secret), ALLOWED_HOSTS="carnet.example", DOCUMENT_KEYS=KEYS)
    assert result.returncode == 0, result.stderr


def test_production_settings_pass_check_deploy():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="prod-like-" + "k" * 50,
        ALLOWED_HOSTS="carnet.example",
        DOCUMENT_KEYS=KEYS,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_debug_is_off_unless_asked():
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        SECRET_KEY="s" * 50,
        ALLOWED_HOSTS="x",
        DOCUMENT_KEYS=KEYS,
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr
