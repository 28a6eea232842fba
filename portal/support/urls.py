from django.urls import path

from portal.support import views

app_name = "support"
urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/new/<str:role>/", views.create_account, name="create_account"),
    path("accounts/<int:pk>/", views.account, name="account"),
    path("accounts/<int:pk>/<str:action>/", views.act, name="act"),
    path("patients/new/", views.register_patient, name="register_patient"),
    path("patients/<int:pk>/invite/", views.invite_patient, name="invite_patient"),
    path("patients/<int:pk>/representatives/", views.representations, name="representations"),
    path("representations/<int:pk>/end/", views.end_representation, name="end_representation"),
    path("patients/<int:pk>/merge/", views.merge_patient, name="merge_patient"),
    path("patients/<int:pk>/merge/<int:duplicate_pk>/", views.confirm_merge, name="confirm_merge"),
    path("audit/", views.audit, name="audit"),
    path("reports/", views.reports, name="reports"),
    path("reports/<int:pk>/", views.report, name="report"),
    path("requests/", views.support_requests, name="support_requests"),
    path("requests/<int:pk>/", views.support_request, name="support_request"),
    path("api-clients/", views.api_clients, name="api_clients"),
    path("api-clients/new/", views.new_api_client, name="new_api_client"),
    path("api-clients/<int:pk>/", views.api_client_secret, name="api_client_secret"),
    path("api-clients/<int:pk>/<str:action>/", views.change_api_client, name="change_api_client"),
]
