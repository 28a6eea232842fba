"""Python's cycle collector in a web worker. What a worker keeps for its whole life
(Django's and Carnet's code, the URL patterns, the compiled templates, the translations:
about 160,000 objects) is frozen once its first request has loaded it, so that a full
collection walks only what requests create. Unfrozen, a full collection walked all of it
in about 80 ms, a stall of one request in a few hundred (``make bench``'s p99)."""

import gc

from django.core.signals import request_finished

_UID = "carnet-freeze-after-first-request"


def freeze_after_first_request() -> None:
    """Freeze what is loaded now, and again once the first request has finished."""
    gc.collect()
    gc.freeze()
    request_finished.connect(_freeze, dispatch_uid=_UID)


def _freeze(**kwargs) -> None:
    request_finished.disconnect(dispatch_uid=_UID)
    gc.collect()  # the first request's garbage is freed, not kept for ever
    gc.freeze()
