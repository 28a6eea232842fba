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

from portal.collector import freeze_after_first_request  # noqa: E402 - Django is set up above

freeze_after_first_request()  # as portal.wsgi does, for the floors and the pages alike
