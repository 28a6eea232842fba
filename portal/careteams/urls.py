from django.urls import path

from portal.careteams import views

app_name = "careteams"
urlpatterns = [
    path("", views.patient_list, name="patient_list"),
    path("patients/new/", views.register_patient, name="register_patient"),
    path("patients/<int:pk>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:pk>/documents/", views.patient_documents, name="patient_documents"),
    path("patients/<int:pk>/prescriptions/", views.patient_prescriptions, name="patient_prescriptions"),
    path("patients/<int:pk>/results/", views.patient_results, name="patient_results"),
    path("patients/<int:pk>/invite/", views.invite_patient, name="invite_patient"),
    path("patients/<int:pk>/parents/add/", views.add_parent, name="add_parent"),
    path("links/<int:pk>/end/", views.end_link, name="end_link"),
    path("teams/<int:pk>/settings/", views.team_settings, name="team_settings"),
    path("teams/<int:pk>/api-clients/new/", views.new_api_client, name="new_api_client"),
    path("api-clients/<int:pk>/<str:action>/", views.change_api_client, name="change_api_client"),
    path("api-clients/<int:pk>/", views.api_client_secret, name="api_client_secret"),
]
