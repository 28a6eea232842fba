from django.urls import path

from portal.accounts import views

app_name = "accounts"
urlpatterns = [
    path("2fa/verify/", views.verify, name="verify"),
    path("2fa/enrol/", views.enrol, name="enrol"),
    path("2fa/enrol/app/", views.enrol_totp, name="enrol_totp"),
    path("2fa/enrol/email/", views.enrol_email, name="enrol_email"),
    path("2fa/backup-codes/", views.backup_codes, name="backup_codes"),
    path("2fa/backup-codes/download/", views.backup_codes_download, name="backup_codes_download"),
]
urlpatterns += [
    path("security/", views.security, name="security"),
    path("invitation/<str:token>/", views.accept_invitation, name="accept_invitation"),
    path("2fa/devices/remove/", views.remove_device, name="remove_device"),
    path("2fa/backup-codes/regenerate/", views.regenerate_backup_codes, name="regenerate_backup_codes"),
    path("security/sessions/<int:pk>/end/", views.end_session, name="end_session"),
    path("security/sessions/end-others/", views.end_other_sessions, name="end_other_sessions"),
    path("security/notices/", views.notice_preferences, name="notice_preferences"),
]
