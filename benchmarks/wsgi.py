"""The bench's servers: Carnet with the floor view's route; with ``BENCH_BARE=1``,
requests go through no middleware at all (floor (a))."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

application = get_wsgi_application()
if os.environ.get("BENCH_BARE"):
    from django.conf import settings

    settings.MIDDLEWARE = []
    application.load_middleware()
