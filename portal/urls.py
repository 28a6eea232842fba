from django.contrib import admin
from django.urls import include, path

from fhir_api import views as fhir_views
from portal import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("help/", views.trust_page, {"page": "help"}, name="help"),
    path("help/contact/", views.contact, name="contact"),
    path("help/contact/sent/", views.contact_sent, name="contact_sent"),
    path("privacy/", views.trust_page, {"page": "privacy"}, name="privacy"),
    path("terms/", views.trust_page, {"page": "terms"}, name="terms"),
    path("terms/accept/", views.terms_accept, name="terms_accept"),
    path("accessibility/", views.trust_page, {"page": "accessibility"}, name="accessibility"),
    path("my/", views.patient_home, name="patient_home"),
    path("care/", include("portal.careteams.urls")),
    path("support/", include("portal.support.urls")),
    path("messages/", include("messaging.urls")),
    path("my/exports/", include("records.export_urls")),
    path("my/representation/", include("portal.representation.urls")),
    path("", include("agenda.urls")),
    path("", include("records.urls")),
    path("accounts/", include("portal.accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("fhir", fhir_views.transaction_bundle, name="fhir_base"),
    path("fhir/", include("fhir_api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

handler500 = "portal.views.server_error"
