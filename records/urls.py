from django.urls import path

from records import views

app_name = "records"
urlpatterns = [
    path("my/documents/", views.documents, name="documents"),
    path("my/documents/add/", views.upload, name="upload"),
    path("my/care-teams/", views.care_teams, name="care_teams"),
    path("my/care-teams/<int:link_pk>/block/", views.block_team, name="block_team"),
    path("my/clinicians/<int:user_pk>/block/", views.block_clinician, name="block_clinician"),
    path("my/access-history/", views.access_history, name="access_history"),
    path("my/access-history/<int:pk>/report/", views.report_access, name="report_access"),
    path("documents/<int:pk>/", views.document, name="document"),
    path("documents/<int:pk>/download/", views.download, name="download"),
    path("documents/<int:pk>/preview/", views.preview, name="preview"),
    path("documents/<int:pk>/hidden/", views.set_hidden, name="set_hidden"),
    path("documents/<int:pk>/delete/", views.delete, name="delete"),
    path("care/patients/<int:patient_pk>/documents/add/", views.clinician_upload, name="clinician_upload"),
    path("care/documents/<int:pk>/withdraw/", views.withdraw_document, name="withdraw_document"),
    path("care/documents/<int:pk>/replace/", views.replace_document, name="replace_document"),
    path("my/prescriptions/", views.prescriptions, name="prescriptions"),
    path("my/prescriptions/<int:pk>/renew/", views.request_renewal, name="request_renewal"),
    path("care/patients/<int:patient_pk>/prescriptions/add/", views.add_prescription, name="add_prescription"),
    path("care/prescriptions/<int:pk>/stop/", views.stop_prescription, name="stop_prescription"),
    path("care/prescriptions/<int:pk>/replace/", views.replace_prescription, name="replace_prescription"),
    path("my/record-history/", views.record_history, name="record_history"),
    path("my/results/", views.results, name="results"),
    path("results/<int:pk>/history/", views.observation_history, name="observation_history"),
    path("measurements/<int:pk>/history/", views.measurement_history, name="measurement_history"),
    path("care/patients/<int:patient_pk>/results/add/", views.add_lab_report, name="add_lab_report"),
    path("care/<str:kind>/<int:pk>/confidential/", views.set_confidential, name="set_confidential"),
    path("care/results/<int:pk>/correct/", views.correct_observation, name="correct_observation"),
    path(
        "care/patients/<int:patient_pk>/profile/<str:kind>/add/",
        views.clinician_add_profile_entry,
        name="clinician_add_profile_entry",
    ),
    path("care/profile/<str:kind>/<int:pk>/withdraw/", views.withdraw_profile_entry, name="withdraw_profile_entry"),
    path("my/profile/", views.profile, name="profile"),
    path("my/profile/<str:kind>/add/", views.add_profile_entry, name="add_profile_entry"),
    path("my/profile/<str:kind>/<int:pk>/delete/", views.delete_profile_entry, name="delete_profile_entry"),
    path("my/profile/<str:kind>/<int:pk>/comment/", views.comment_profile_entry, name="comment_profile_entry"),
]
