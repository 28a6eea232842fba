from django.utils.functional import SimpleLazyObject

from messaging.models import ReadState
from portal import access


def unread_messages(request):
    """``unread_messages``: the number shown in the main navigation, computed
    (in one query) only when a template uses it; nothing before the second factor."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_verified", bool)() or not (user.is_patient or user.is_clinician):
        return {}
    return {
        "unread_messages": SimpleLazyObject(
            lambda: ReadState.objects.unread_total(user, access.conversations_for(user))
        )
    }
