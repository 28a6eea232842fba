from django.apps import AppConfig


class CareTeamsConfig(AppConfig):
    name = "portal.careteams"
    label = "careteams"
