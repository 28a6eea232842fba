from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        # Carnet works by invitation; open sign-up only where a setting allows it.
        return settings.ACCOUNT_OPEN_SIGNUP
