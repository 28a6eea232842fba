from django.urls import path, re_path

from agenda import views

app_name = "agenda"
urlpatterns = [
    # A care team's side.
    path("care/patients/<int:patient_pk>/appointments/new/", views.book, name="book"),
    path("care/appointments/<int:pk>/edit/", views.edit, name="edit"),
    path("care/appointments/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("care/agenda/", views.team_day, name="team_day"),
    path("care/agenda/week/", views.team_week, name="team_week"),
    # The patient's side.
    path("my/appointments/", views.mine, name="mine"),
    path("my/appointments/<int:pk>/calendar.ics", views.ics, name="ics"),
    path("my/appointments/<int:pk>/cancel/", views.patient_cancel, name="patient_cancel"),
    path("my/appointments/<int:pk>/reschedule/", views.reschedule, name="reschedule"),
    path("my/appointments/calendar/", views.feed_settings, name="feed_settings"),
    # A calendar application's subscription: the secret token is the only credential.
    re_path(r"^calendar/(?P<token>[A-Za-z0-9_-]{20,100})\.ics$", views.feed, name="feed"),
]
