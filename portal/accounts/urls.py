from django.urls import path
from django.views.i18n import JavaScriptCatalog

from portal.accounts import passkeys, views

app_name = "accounts"
urlpatterns = [
    path("2fa/verify/", views.verify, name="verify"),
    path("2fa/enrol/", views.enrol, name="enrol"),
    path("2fa/enrol/app/", views.enrol_totp, name="enrol_totp"),
    path("2fa/enrol/email/", views.enrol_email, name="enrol_email"),
    path("2fa/enrol/passkey/", views.enrol_passkey, name="enrol_passkey"),
    # The passkey ceremonies (JSON, called by django-otp-webauthn's script) and its strings.
    path("2fa/passkeys/register/begin/", passkeys.RegisterBegin.as_view(), name="passkey_register_begin"),
    path("2fa/passkeys/register/complete/", passkeys.RegisterComplete.as_view(), name="passkey_register_complete"),
    path("2fa/passkeys/verify/begin/", passkeys.VerifyBegin.as_view(), name="passkey_verify_begin"),
    path("2fa/passkeys/verify/complete/", passkeys.VerifyComplete.as_view(), name="passkey_verify_complete"),
    path(
        "2fa/passkeys/jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="passkey_jsi18n",
    ),
    path("2fa/backup-codes/", views.backup_codes, name="backup_codes"),
    path("2fa/backup-codes/download/", views.backup_codes_download, name="backup_codes_download"),
]
urlpatterns += [
    path("security/", views.security, name="security"),
    path("invitation/<str:token>/", views.accept_invitation, name="accept_invitation"),
    path("2fa/devices/remove/", views.remove_device, name="remove_device"),
    path("2fa/passkeys/<int:pk>/rename/", views.rename_passkey, name="rename_passkey"),
    path("2fa/passkeys/<int:pk>/remove/", views.remove_passkey, name="remove_passkey"),
    path("2fa/backup-codes/regenerate/", views.regenerate_backup_codes, name="regenerate_backup_codes"),
    path("security/sessions/<int:pk>/end/", views.end_session, name="end_session"),
    path("security/sessions/end-others/", views.end_other_sessions, name="end_other_sessions"),
    path("security/notices/", views.notice_preferences, name="notice_preferences"),
]
