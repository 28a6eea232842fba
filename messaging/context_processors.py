from django.http import Http404
from django.utils.functional import SimpleLazyObject

from messaging.models import ReadState
from portal import access


def unread_messages(request):
    """``unread_messages``: the number shown in the main navigation, computed
    (in one query) only when a template uses it; nothing before the second factor."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_verified", bool)() or not (user.is_patient or user.is_clinician):
        return {}

    def count():
        conversations = access.conversations_for(user)
        if user.is_patient:  # one record per page: the badge counts the record one is in
            try:
                record = access.current_record(request)
            except Http404:
                return 0
            if not record.may(access.MESSAGES):
                return 0
            conversations = conversations.filter(patient=record.patient)
        return ReadState.objects.unread_total(user, conversations)

    return {"unread_messages": SimpleLazyObject(count)}
