from django.urls import path

from fhir_api import views

# The base URL is /fhir; a transaction is POSTed to it with or without a trailing slash,
# as FHIR clients do either (portal.urls routes "/fhir" here too).
app_name = "fhir"
urlpatterns = [
    path("", views.transaction_bundle, name="base"),
    path("metadata", views.metadata, name="metadata"),
    path("token", views.token, name="token"),
    path("DocumentReference", views.document_references, name="document_references"),
    path("DocumentReference/_search", views.document_reference_search, name="document_reference_search"),
    path("DocumentReference/<str:pk>", views.document_reference, name="document_reference"),
    path("Binary/<str:pk>", views.binary, name="binary"),
    path("Patient", views.patients, name="patients"),
    path("Patient/_search", views.patient_search, name="patient_search"),
    # Anything else under /fhir, and an unknown id (the views raise FhirError 404): an OperationOutcome.
    path("<path:path>", views.not_found, name="not_found"),
]
