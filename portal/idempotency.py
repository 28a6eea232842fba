"""One rendered form, one effect, however many times it is submitted.

Each state-changing form carries a token (``{% form_token %}``) and its view is
wrapped in ``@idempotent``. The first submit inserts ``(user, token)`` in the same
transaction as the view's writes; a second submit of the same form, even at the
same instant, waits on the unique index and then answers with the first one's
redirect, without acting again. A submit that did not succeed (the form is shown
again with its errors) leaves no row, so nothing is remembered but actions done.
"""

import datetime
import functools
import uuid

from django.db import IntegrityError, transaction
from django.http import HttpResponseRedirect
from django.utils import timezone

from portal.models import FormSubmission

FIELD = "form_token"
# A form submitted again after this long (a tab left open for days) acts again.
KEEP_FOR = datetime.timedelta(days=1)


def _token_of(request) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.POST.get(FIELD, ""))
    except ValueError:
        return None


def idempotent(view):
    """Make a POST view act once per form token (see the module's docstring).
    Put it below the access decorators: refused requests never reach it."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        token = _token_of(request) if request.method == "POST" else None
        if token is None or not request.user.is_authenticated:
            return view(request, *args, **kwargs)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    submission = FormSubmission.objects.create(user=request.user, token=token)
            except IntegrityError:  # submitted before (or right now, and that one has committed)
                earlier = FormSubmission.objects.filter(user=request.user, token=token).first()
                if earlier is not None:
                    return HttpResponseRedirect(earlier.redirect_to)
                return view(request, *args, **kwargs)  # the earlier row was purged
            response = view(request, *args, **kwargs)
            if response.status_code in (301, 302, 303) and response.has_header("Location"):
                submission.redirect_to = response["Location"]
                submission.save(update_fields=["redirect_to"])
            else:  # shown again with errors: the corrected form may be sent with the same token
                submission.delete()
            return response

    wrapper.idempotent_form = True
    return wrapper


def purge_form_submissions() -> int:
    """Retention: forget submissions older than ``KEEP_FOR``; returns how many went."""
    deleted, _ = FormSubmission.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()
    return deleted
