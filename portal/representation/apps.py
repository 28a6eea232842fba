from django.apps import AppConfig


class RepresentationConfig(AppConfig):
    name = "portal.representation"
    label = "representation"
