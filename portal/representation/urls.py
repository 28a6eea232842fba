from django.urls import path

from portal.representation import views

app_name = "representation"
urlpatterns = [
    path("switch/", views.switch, name="switch"),
    path("helpers/", views.helpers, name="helpers"),
    path("helpers/<int:pk>/end/", views.end_helper, name="end_helper"),
    path("helpers/invitations/<int:pk>/cancel/", views.cancel_invitation, name="cancel_invitation"),
    path("accept/<str:token>/", views.accept, name="accept"),
]
