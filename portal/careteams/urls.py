from django.urls import path

from portal.careteams import views

app_name = "careteams"
urlpatterns = [
    path("", views.patient_list, name="patient_list"),
    path("patients/<int:pk>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:pk>/invite/", views.invite_patient, name="invite_patient"),
]
