import pytest
from django.db import OperationalError

from portal import views
from portal.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_healthz_reports_each_dependency(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok", "broker": "ok"}}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_degraded_not_down_when_the_broker_is_unreachable(client, monkeypatch):
    """The site goes on without Redis: a load balancer must not take it out."""
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"].startswith("error:")
    assert body["checks"]["database"] == "ok"


def test_healthz_is_degraded_not_down_when_the_cache_is_unreachable(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "portal.cache.FailoverRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1},
        },
        "fallback": settings.CACHES["fallback"],
    }
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "degraded"
    assert response.json()["checks"]["cache"].startswith("error:")


def test_healthz_is_503_when_the_database_fails(client, monkeypatch):
    def broken():
        raise OperationalError("connection refused")

    monkeypatch.setitem(views.CHECKS, "database", broken)
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["status"] == "error"
    assert response.json()["checks"]["database"] == "error: OperationalError"


@pytest.mark.parametrize(
    ("status", "template", "words"),
    [
        (400, "400.html", "Cette demande n’a pas pu être lue"),
        (403, "403_csrf.html", "Ce formulaire a expiré"),
    ],
)
def test_a_refused_request_gets_carnets_own_page_in_both_languages(client, status, template, words):
    if status == 403:  # a form sent without its CSRF token
        from django.test import Client

        response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"login": "x", "password": "y"})
    else:
        response = client.get("/", HTTP_HOST="bad host name")  # Django's SuspiciousOperation: a 400
    assert response.status_code == status
    page = response.content.decode()
    assert words in page and 'lang="en"' in page and "carnet.css" in page
