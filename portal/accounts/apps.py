from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "portal.accounts"
    label = "accounts"

    def ready(self):
        from allauth.account.signals import email_confirmed

        from portal.accounts import services

        def on_email_confirmed(sender, request, email_address, **kwargs):
            services.finish_email_change(email_address=email_address)

        email_confirmed.connect(on_email_confirmed, dispatch_uid="carnet-finish-email-change", weak=False)
