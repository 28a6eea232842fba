import functools

from django.http import Http404

from messaging.models import Conversation, ReadState
from portal import access


def unread_messages(request):
    """``unread_messages``: the number shown in the main navigation, counted only when
    a template uses it (no query when the user's row said nothing is unread, two
    otherwise); nothing before the second factor."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_verified", bool)() or not (user.is_patient or user.is_clinician):
        return {}

    def conversations():
        if user.is_patient:  # one record per page: the badge counts the record one is in
            try:
                return access.rows_in_record(access.current_record(request), Conversation)
            except Http404:  # no record, or not its messages
                return Conversation.objects.none()
        return access.conversations_for(user)

    @functools.cache  # once per request (a function per request), and only if shown
    def count() -> int:
        return ReadState.objects.unread_total(user, conversations)

    # A callable, which templates call: they get a real number, that any language's plural
    # rule can compute with (a lazy object is no number to ``n % 10``).
    return {"unread_messages": count}
