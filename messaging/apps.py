from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self):
        from messaging.models import ReadState
        from portal.accounts.backends import USER_ROW

        # The unread badge of every page: whether the user has anything unread at all,
        # asked with their row (most have nothing unread: then no query of its own).
        USER_ROW.also_exists(UNREAD_FLAG, ReadState, "user", unread__gt=0)


# Set on the signed-in user (portal.accounts.backends) by the SELECT that reads them.
UNREAD_FLAG = "has_unread_messages"
