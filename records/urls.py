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
    path("documents/<int:pk>/", views.document, name="document"),
    path("documents/<int:pk>/download/", views.download, name="download"),
    path("documents/<int:pk>/preview/", views.preview, name="preview"),
    path("documents/<int:pk>/hidden/", views.set_hidden, name="set_hidden"),
    path("documents/<int:pk>/delete/", views.delete, name="delete"),
    path("care/patients/<int:patient_pk>/documents/add/", views.clinician_upload, name="clinician_upload"),
]
