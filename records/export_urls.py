from django.urls import path

from records import export_views

app_name = "exports"
urlpatterns = [
    path("", export_views.export_page, name="page"),
    path("list/", export_views.export_list, name="list"),
    path("<int:pk>/download/", export_views.download, name="download"),
]
