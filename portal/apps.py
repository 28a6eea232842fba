from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self):
        from portal import checks  # noqa: F401 (registers Carnet's system checks)
