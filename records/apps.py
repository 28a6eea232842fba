from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "records"

    def ready(self):
        # Celery's autodiscovery only imports ``tasks`` modules.
        from records import export_tasks  # noqa: F401
