from django.urls import path

from portal.support import views

app_name = "support"
urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/<int:pk>/", views.account, name="account"),
    path("accounts/<int:pk>/<str:action>/", views.act, name="act"),
    path("audit/", views.audit, name="audit"),
]
