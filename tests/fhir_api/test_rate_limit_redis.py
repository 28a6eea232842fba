"""The per-client rate limit on a real Redis, stopped mid-test: the limit holds while
Redis is up, and the API keeps answering (without a limit) when it is down."""

import shutil
import socket
import subprocess
import time

import pytest

from tests.conftest import need

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_redis(settings):
    """A redis-server of this test's own, on a free port; the cache points at it."""
    binary = shutil.which("redis-server")
    need(binary is not None, "needs redis-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    yield process
    process.kill()
    process.wait(5)


def test_limit_holds_on_redis_and_the_api_survives_its_loss(
    http, token, ins_patient, settings, own_redis, start_of_minute
):
    settings.FHIR_RATE_LIMIT_PER_MINUTE = 2
    path = f"/fhir/DocumentReference?patient={ins_patient.pk}"
    assert [http.json("GET", path, token=token)[0] for _ in range(3)] == [200, 200, 429]

    own_redis.terminate()
    own_redis.wait(5)
    started = time.monotonic()
    status, _h, _answer = http.json("GET", path, token=token)

    assert status == 200
    assert time.monotonic() - started < 5  # short socket timeouts, no hang
