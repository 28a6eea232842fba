"""The Django admin site: superusers only, past the second factor. Health content
(records, messaging, the access log, patients) is registered for nobody, and no
admin page may show it, the delete confirmation included."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig
from django.contrib.admin.utils import NestedObjects
from django.db import router
from django.utils.translation import gettext_lazy as _

# Apps and models whose rows are a patient's data, or say who cares for whom.
HEALTH_APPS = {"records", "messaging", "careteams", "audit", "support", "fhir_api", "agenda"}
HEALTH_MODELS = {"accounts.Patient", "accounts.Invitation"}


def holds_health_content(model) -> bool:
    return model._meta.app_label in HEALTH_APPS or model._meta.label in HEALTH_MODELS


class NoHealthContentAdmin:
    """Mixed into every ModelAdmin of the site. Django's delete confirmation lists
    every row a deletion would remove or is blocked by (document titles, message
    subjects, conditions, a clinician's prescriptions…): when any of them is health
    content, nothing is listed and the deletion is refused. Deleting an account
    that holds health data is not an admin action: support deactivates it."""

    def get_deleted_objects(self, objs, request):
        collector = NestedObjects(using=router.db_for_write(self.model))
        collector.collect(objs)
        reached = {type(obj) for obj in collector.protected} | set(collector.model_objs)
        # A SET_NULL relation is an update, not a deletion: a patient's record would
        # lose its login. It counts as reaching the record all the same.
        reached |= {field.model for (field, _value), updates in collector.field_updates.items() if any(updates)}
        if any(holds_health_content(model) for model in reached):
            refusal = _("accounts holding health data (deactivate the account from the support console instead)")
            return [], {}, {refusal}, []
        return super().get_deleted_objects(objs, request)


class SuperuserAdminSite(admin.AdminSite):
    site_header = site_title = _("Carnet administration")

    def has_permission(self, request):
        user = request.user
        return user.is_active and user.is_superuser and user.is_verified()

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every admin, ours or a library's, gets the health-content guard."""
        admin_class = admin_class or admin.ModelAdmin
        namespace = {"__module__": admin_class.__module__}
        guarded = type(admin_class.__name__, (NoHealthContentAdmin, admin_class), namespace)
        super().register(model_or_iterable, guarded, **options)


class AdminConfig(DjangoAdminConfig):
    default_site = "portal.admin.SuperuserAdminSite"
