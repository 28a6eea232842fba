"""The Django admin site: superusers only, past the second factor. Health content
(records, messaging, the access log, patients) is registered for nobody."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig
from django.utils.translation import gettext_lazy as _


class SuperuserAdminSite(admin.AdminSite):
    site_header = site_title = _("Carnet administration")

    def has_permission(self, request):
        user = request.user
        return user.is_active and user.is_superuser and user.is_verified()


class AdminConfig(DjangoAdminConfig):
    default_site = "portal.admin.SuperuserAdminSite"
