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


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "prod-like-" + "k" * 50,
    "ALLOWED_HOSTS": "carnet.example",
    "DOCUMENT_KEYS": KEYS,
}
OPERATOR = {
    "OPERATOR_NAME": "Centre hospitalier de Carnet",
    "OPERATOR_ADDRESS": "1 rue de la Santé, 75014 Paris",
    "OPERATOR_HOSTING": "Hébergeur HDS",
    "SUPPORT_EMAIL": "support@carnet.example",
    "DPO_EMAIL": "dpo@carnet.example",
}


def test_production_settings_pass_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, **OPERATOR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_makefile_check_deploy_names_an_operator():
    """CI runs `make check-deploy`: its environment names every operator detail."""
    target = (ROOT / "Makefile").read_text().split("check-deploy:", 1)[1].split("\n\n", 1)[0]
    assert all(f"{variable}=" in target for variable in OPERATOR)


@pytest.mark.parametrize("dpo_email", [None, "dpo@carnet.localhost", " "])
def test_a_placeholder_operator_contact_fails_check_deploy(dpo_email):
    operator = {key: value for key, value in OPERATOR.items() if key != "DPO_EMAIL"}
    if dpo_email is not None:
        operator["DPO_EMAIL"] = dpo_email
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, **operator)
    assert result.returncode != 0
    assert "carnet.W001" in result.stderr and "DPO_EMAIL" in result.stderr
    assert "SUPPORT_EMAIL" not in result.stderr  # only what is left to set is named


def test_placeholders_are_for_deploy_checks_and_production_only():
    assert manage("check", "--fail-level", "WARNING", **PRODUCTION).returncode == 0  # every command still runs
    development = manage("check", "--deploy", DEBUG="1")
    assert "carnet.W001" not in development.stdout + development.stderr


def test_passkeys_bound_to_another_domain_fail_check_deploy():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, **OPERATOR, WEBAUTHN_RP_ID="other.example"
    )
    assert result.returncode != 0 and "carnet.W002" in result.stderr
    subdomain = {**PRODUCTION, "ALLOWED_HOSTS": "www.carnet.example", "WEBAUTHN_RP_ID": "carnet.example"}
    assert manage("check", "--deploy", "--fail-level", "WARNING", **subdomain, **OPERATOR).returncode == 0


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


@pytest.mark.django_db
def test_a_query_run_again_and_again_is_planned_once(postgres):
    """On PostgreSQL a query the app runs over and over is prepared on its connection
    (parameters sent apart from the SQL), so it is not planned again on each request:
    planning the access policy's joins cost more than running them."""
    from django.db import connection

    from portal.accounts.models import Patient

    def prepared():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ['%"accounts_patient"."last_name" = $1%'],
            )
            return cursor.fetchone()[0]

    assert prepared() == 0
    for name in ("Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard"):
        list(Patient.objects.filter(last_name=name).values_list("pk"))
    assert prepared() == 1


def test_prepared_statements_can_be_turned_off_for_a_pooler():
    """(On by default: the test above.)"""
    show = "from django.conf import settings; print(sorted(settings.DATABASES['default']['OPTIONS']))"
    off = manage(
        "shell", "-c", show, DEBUG="1", DATABASE_URL="postgres://db.example/carnet", DATABASE_PREPARED_STATEMENTS="0"
    )
    assert "connect_timeout" in off.stdout, off.stderr  # the options were printed
    assert "server_side_binding" not in off.stdout and "prepare_threshold" not in off.stdout, off.stdout


@pytest.mark.django_db
def test_the_operators_placeholders_speak_the_pages_language(client):
    """Until the operator is named, the privacy notice says so in its own language; and
    an address left unset is still named by the deploy check."""
    french = client.get("/privacy/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    english = client.get("/privacy/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "non renseignée" in french and "not set" not in french
    assert "not set" in english and "non renseign" not in english
    operator = {key: value for key, value in OPERATOR.items() if key != "OPERATOR_ADDRESS"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, **operator)
    assert "carnet.W001" in result.stderr and "OPERATOR_ADDRESS" in result.stderr
