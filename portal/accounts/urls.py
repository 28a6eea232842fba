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
