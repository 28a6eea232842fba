from django.urls import path

from portal.careteams import views

app_name = "careteams"
urlpatterns = [
    path("", views.patient_list, name="patient_list"),
    path("patients/new/", views.register_patient, name="register_patient"),
    path("patients/<int:pk>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:pk>/invite/", views.invite_patient, name="invite_patient"),
    path("patients/<int:pk>/parents/add/", views.add_parent, name="add_parent"),
    path("links/<int:pk>/end/", views.end_link, name="end_link"),
    path("teams/<int:pk>/settings/", views.team_settings, name="team_settings"),
]
