from django.http import Http404
from django.utils.functional import SimpleLazyObject

from portal import access


def records(request):
    """``current_record`` and ``records`` (the switcher's choices) for a patient-side user
    past the second factor, computed only when a template uses them."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_verified", bool)() or not user.is_patient:
        return {}

    def current():
        try:
            return access.current_record(request)
        except Http404:
            return None

    return {
        "current_record": SimpleLazyObject(current),
        "records": SimpleLazyObject(lambda: access.records_of_request(request)),
    }
