"""Settings of the bench's servers: Carnet's own, plus the floor view's route."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.urls"
