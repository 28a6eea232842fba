"""Carnet settings: one file, configured from the environment.

Every variable is listed in README.md. A secret may also be given as a file
path in ``<NAME>_FILE`` (Docker/Kubernetes secrets).
"""

import base64
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    """Read ``name`` from the environment, or from the file named by ``name_FILE``."""
    if name in os.environ:
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path} ({exc.strerror})") from None
    return default


def env_bool(name, default=False):
    value = env(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name, default):
    value = env(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name, default=""):
    return [item.strip() for item in (env(name) or default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is not set (required unless DEBUG=1)")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env("SITE_URL", "http://localhost:8000").rstrip("/")
# The terms of use in force (templates/portal/trust/terms.*.html): a new value makes
# everyone accept them again at their next request past the second factor.
TERMS_VERSION = "2026-11-30"
# Who runs this Carnet, shown on the privacy notice and the accessibility statement.
# Until the operator names itself these placeholders show, and `check --deploy` flags
# each one left (portal/checks.py): a privacy notice must name a real controller and DPO.
OPERATOR_PLACEHOLDERS = {
    "name": "Carnet (démonstration)",
    "address": pgettext_lazy("the operator's address", "not set"),
    "support_email": "support@carnet.localhost",
    "dpo_email": "dpo@carnet.localhost",
    "hosting": pgettext_lazy("the operator's host", "not set"),
}
OPERATOR_ENV = {
    "name": "OPERATOR_NAME",
    "address": "OPERATOR_ADDRESS",
    "support_email": "SUPPORT_EMAIL",
    "dpo_email": "DPO_EMAIL",
    "hosting": "OPERATOR_HOSTING",
}
OPERATOR = {key: env(variable, OPERATOR_PLACEHOLDERS[key]) for key, variable in OPERATOR_ENV.items()}

INSTALLED_APPS = [
    "portal.accounts",
    "portal.careteams",
    "portal.audit",
    "portal.support",
    "portal.representation",
    "portal",
    "records",
    "messaging",
    "fhir_api",
    "agenda",
    "reminders",
    "portal.admin.AdminConfig",  # django.contrib.admin, for superusers only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.usersessions",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_email",
    "django_otp_webauthn",
    "axes",
    "oauth2_provider",
]

MIDDLEWARE = [
    # Outermost: runs a read again when the database dropped its connection.
    "portal.middleware.RetryReadOnLostDatabaseMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Before anything reads a request body (the CSRF check parses it); after the
    # language is chosen, so its 413 page is in the person's language.
    "portal.middleware.RequestBodyLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.accounts.middleware.SecondFactorDeviceMiddleware",  # django-otp's
    # Early, so it also marks the answers of the middleware below (redirects to the second factor).
    "portal.middleware.NoStoreForAuthenticatedMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.NotFoundPageMiddleware",
    "portal.middleware.FormAddressMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.accounts.middleware.SessionLifetimeMiddleware",
    "portal.accounts.middleware.SecondFactorRequiredMiddleware",
    "portal.accounts.middleware.TermsAcceptedMiddleware",
    # Last: turns a lockout found during authentication into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "messaging.context_processors.unread_messages",
                "portal.representation.context_processors.records",
                "portal.csrf.context",  # after Django's own, always first: one token per request
            ],
            # After Django's own builtins: portal.templatetags.urls's {% url %} (each URL
            # reversed once) and inheritance's {% extends %} (the layout's blocks listed
            # once) take the place of Django's.
            "builtins": [
                "portal.templatetags.idempotency",
                "portal.templatetags.urls",
                "portal.templatetags.inheritance",
            ],
        },
    },
]

# Database: SQLite by default, PostgreSQL when DATABASE_URL says so.
_database_url = env("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'carnet.sqlite3'}"
try:
    _database = dj_database_url.parse(_database_url)
except Exception as exc:  # the library raises several types; all mean the same to the operator
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL ({exc})") from None
if not _database.get("NAME"):
    raise ImproperlyConfigured("DATABASE_URL names no database")
_database["ATOMIC_REQUESTS"] = True
if _database["ENGINE"] == "django.db.backends.postgresql":
    # Persistent connections: opening one per request costs ~10x the throughput.
    _database["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 600)
    _database["CONN_HEALTH_CHECKS"] = True
    _database.setdefault("OPTIONS", {})["connect_timeout"] = 5
    # Parameters sent apart from the SQL, and a query run 5 times on a connection
    # prepared: PostgreSQL then plans it once and keeps the plan (unless the values
    # matter to the plan, a LIKE prefix say: it plans those each time). Planning the
    # access policy's joins cost more than running them.
    # DATABASE_PREPARED_STATEMENTS=0 turns this off (a pooler that cannot keep them).
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        _database["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
elif _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    _database["TEST"] = {"NAME": env("TEST_SQLITE_NAME")} if env("TEST_SQLITE_NAME") else {}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Queries asked at every page keep their SQL (portal.prepared). With this on (the test
# suite sets it), every call also checks that it sends the SQL its values build.
PREPARED_QUERIES_CHECK = env_bool("PREPARED_QUERIES_CHECK", False)

REDIS_URL = env("REDIS_URL")
CACHE_URL = env("CACHE_URL", REDIS_URL)
# Redis, and the database while Redis is down (portal/cache.py): rate limits keep holding.
_fallback_cache = {
    "BACKEND": "django.core.cache.backends.db.DatabaseCache",
    "LOCATION": "carnet_cache",
    "KEY_PREFIX": env("CACHE_KEY_PREFIX", "carnet"),
}
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "portal.cache.FailoverRedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "carnet"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        },
        "fallback": _fallback_cache,
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": BASE_DIR / "var" / "cache",
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "carnet"),
        },
        "fallback": _fallback_cache,
    }

# Accounts
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses any authentication while the account or the IP is locked out.
    "axes.backends.AxesStandaloneBackend",
    # Django's and allauth's, reading the signed-in user in a query written once.
    "portal.accounts.backends.ModelBackend",
    "portal.accounts.backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_ADAPTER = "portal.accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {"login": "portal.accounts.forms.LoginForm"}
ACCOUNT_OPEN_SIGNUP = env_bool("ACCOUNT_OPEN_SIGNUP", False)
# Changing the email address asks for the password again (allauth's reauthentication).
ACCOUNT_REAUTHENTICATION_REQUIRED = True
# Notices of password and email changes: sent by AccountAdapter through Celery.
ACCOUNT_EMAIL_NOTIFICATIONS = True
# allauth's own emails (password reset, address confirmation) say where they come from;
# their greeting and signature are ours (templates/account/email/base_message.txt).
ACCOUNT_EMAIL_SUBJECT_PREFIX = "Carnet – "
# Lockout (django-axes, database handler: works while Redis is down). Per account *and*
# address together: five failures lock that account from that address only, so a stranger
# failing on purpose cannot lock its owner out (from their own address), and colleagues
# behind one hospital address do not lock each other out. Many attempts from one address
# are slowed by allauth's per-address sign-in rate (its "login" limit), and a password
# alone opens nothing: every role passes a second factor. A failure during the lockout
# does not extend it. Support staff can unlock.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_USERNAME_CALLABLE = "portal.accounts.lockout.username_of"
AXES_LOCKOUT_TEMPLATE = "account/lockout.html"
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_CLIENT_IP_CALLABLE = "portal.accounts.lockout.client_ip"
# Behind reverse proxies, the client's address is the X-Forwarded-For entry the nearest
# proxy added; without this every client would share the proxy's address (and lockout).
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1 if env_bool("BEHIND_PROXY", False) else 0)
AXES_VERBOSE = False
# Failed sign-ins are counted by axes, in the database; allauth's cache-based
# counter would lock at a different threshold and fail while Redis is down.
ACCOUNT_RATE_LIMITS = {"login_failed": None}

# Active sessions (device, IP, last seen) listed on the account page. Their "last
# seen" is written by SessionLifetimeMiddleware at most once a minute, not by
# allauth on every request.
USERSESSIONS_TRACK_ACTIVITY = False

# Second factor (django-otp): required for every role, see portal.accounts.middleware.
OTP_TOTP_ISSUER = "Carnet"
OTP_EMAIL_SUBJECT = _("Your Carnet sign-in code")
OTP_EMAIL_BODY_TEMPLATE_PATH = "accounts/email/otp_code.txt"
OTP_EMAIL_TOKEN_VALIDITY = 10 * 60
# Passkeys (django-otp-webauthn), a second factor like the others: never a sign-in
# without the password. The relying party ID is the domain the passkeys are bound to
# (changing it later orphans every passkey); by default the first host name of
# ALLOWED_HOSTS ("localhost" in development: an IP address cannot be one), else SITE_URL's
# (`check --deploy` says when it is none of ALLOWED_HOSTS). The origins
# a ceremony may come from: WEBAUTHN_ORIGINS, or else the request's own (its host
# already checked against ALLOWED_HOSTS), when that host is the RP ID or under it
# (portal.accounts.passkeys.PasskeyHelper).
OTP_WEBAUTHN_RP_ID = env("WEBAUTHN_RP_ID") or next(
    (host for host in ALLOWED_HOSTS if host[:1] not in {".", "*", "["} and not host.replace(".", "").isdigit()),
    urlparse(SITE_URL).hostname or "localhost",
)
OTP_WEBAUTHN_RP_NAME = "Carnet"
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list("WEBAUTHN_ORIGINS")
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_HELPER_CLASS = "portal.accounts.passkeys.PasskeyHelper"
# django-otp-webauthn asks for a fixed list of origins; without WEBAUTHN_ORIGINS ours
# come from the request (see above).
SILENCED_SYSTEM_CHECKS = [] if OTP_WEBAUTHN_ALLOWED_ORIGINS else ["otp_webauthn.E030"]

# Sessions, in the database (the default engine: portal.tasks.clear_expired_sessions
# deletes the expired ones), enforced by portal.accounts.middleware.SessionLifetimeMiddleware:
# idle timeout 30 min after the person's last own request (background refreshes do
# not count), absolute lifetime 12 h. Activity is saved at most once a minute, so the
# stored expiry runs that much (plus a margin) past the idle timeout.
SESSION_IDLE_TIMEOUT = timedelta(minutes=30)
SESSION_ABSOLUTE_LIFETIME = timedelta(hours=12)
SESSION_ACTIVITY_INTERVAL = timedelta(minutes=1)
SESSION_COOKIE_AGE = int((SESSION_IDLE_TIMEOUT + 2 * SESSION_ACTIVITY_INTERVAL).total_seconds())
# No "remember me": a health record left open on a shared computer ends with the
# browser (allauth then makes the session cookie a browser-session one).
ACCOUNT_SESSION_REMEMBER = False
SESSION_SAVE_EVERY_REQUEST = False
# Django's database sessions; the read of each request's session in a query written once.
SESSION_ENGINE = "portal.accounts.session_store"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"

# Internationalisation: French first, English second.
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
FORMAT_MODULE_PATH = ["portal.formats"]  # English dates day first, as read in France
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Europe/Paris"
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", BASE_DIR / "var" / "staticfiles"))
MEDIA_ROOT = Path(env("MEDIA_ROOT", BASE_DIR / "var" / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Tests and `make run` serve straight from the finders, no collectstatic needed.
WHITENOISE_USE_FINDERS = DEBUG or env_bool("WHITENOISE_USE_FINDERS", False)

# Documents: encrypted at rest with AES-256-GCM. DOCUMENT_KEYS is a comma-separated
# list of "key-id:base64-32-bytes"; the first encrypts, all decrypt (key rotation).
_document_keys = env("DOCUMENT_KEYS")
if not _document_keys:
    if not DEBUG and not env_bool("ALLOW_DEVELOPMENT_KEYS", False):
        raise ImproperlyConfigured("DOCUMENT_KEYS is not set (required unless DEBUG=1)")
    _document_keys = "dev:Y2FybmV0LWRldmVsb3BtZW50LWtleS0zMi1ieXRlcyE="
DOCUMENT_KEYS = {}
for _item in _document_keys.split(","):
    _kid, _, _b64 = _item.strip().partition(":")
    try:
        _key = base64.b64decode(_b64, validate=True)
    except ValueError:
        _key = b""
    if not _kid or len(_key) != 32:
        raise ImproperlyConfigured("DOCUMENT_KEYS must be 'key-id:base64 of 32 bytes', comma-separated")
    DOCUMENT_KEYS[_kid] = _key
DOCUMENT_CURRENT_KEY = next(iter(DOCUMENT_KEYS))
# Request bodies (portal.middleware.RequestBodyLimitMiddleware): any request may carry
# REQUEST_BODY_MAX_BYTES (forms, sign-in); an upload view (@allows_upload) that plus the
# files its form allows. Larger ones are refused from their declared length, unread.
REQUEST_BODY_MAX_BYTES = 256 * 1024
DOCUMENT_MAX_BYTES = 20 * 1024 * 1024
# A lab report imported from a CSV file: whole, or refused over these limits.
LAB_CSV_MAX_ROWS = 1000
LAB_CSV_MAX_BYTES = 1024 * 1024
# Document previews are drawn in a child process held to these limits; a document whose
# drawing fails, or is killed this many times, is served without a preview.
PREVIEW_MAX_PIXELS = 600 * 2400  # a PDF page is drawn 600 px wide: at most 4 times as tall
PREVIEW_MEMORY_BYTES = 512 * 1024 * 1024
PREVIEW_TIMEOUT_SECONDS = 20
PREVIEW_MAX_ATTEMPTS = 3
MESSAGE_ATTACHMENTS_MAX_COUNT = 5
MESSAGE_ATTACHMENTS_MAX_BYTES = 25 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Uploads stay in memory, never in a temporary file: plaintext health data touches no
# disk outside the sealed store (a killed worker would leave its /tmp file behind).
# Memory is bounded by the body limits above, which this covers.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = max(DOCUMENT_MAX_BYTES, MESSAGE_ATTACHMENTS_MAX_BYTES) + REQUEST_BODY_MAX_BYTES

# FHIR API (fhir_api/): OAuth 2.0 client credentials (django-oauth-toolkit), one client per
# care team, SMART v2-style system scopes; each client's allowed scopes are on ApiClient.
OAUTH2_PROVIDER = {
    "SCOPES": {
        "system/DocumentReference.c": "Publish documents",
        "system/DocumentReference.rs": "Read and search the team's documents",
        "system/Observation.c": "Publish lab results",
        "system/MedicationRequest.c": "Publish prescriptions",
        "system/Patient.rs": "Match patients",
    },
    "DEFAULT_SCOPES": [],
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("FHIR_TOKEN_SECONDS", 900),
    "OAUTH2_VALIDATOR_CLASS": "fhir_api.oauth.ClientValidator",
    # RFC 9700 (OAuth 2.0 Security BCP) everywhere, ahead of django-oauth-toolkit 4's defaults;
    # only the client credentials grant is used (fhir_api.oauth), tokens are stored hashed.
    **{
        f"COMPLIANT_BCP_RFC9700_{name}": True
        for name in [
            "IMPLICIT_GRANT",
            "PASSWORD_GRANT",
            "PKCE_METHOD",
            "ACCESS_TOKEN_TRANSPORT",
            "AUTHZ_RESPONSE_ISS",
            "TOKEN_STORAGE",
            "REFRESH_TOKEN",
            "REDIRECT_URI_SCHEME",
            "REDIRECT_URI_MATCHING",
            "PKCE_REQUIRED",
        ]
    },
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],  # no redirect flow is used; none in clear
}
# Named explicitly: fhir_api.ApiClient's migration refers to the (swappable) application model.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
# The NIRs in this database are fictitious (demonstrations): exports name them under
# the INS test OID (1.2.250.1.213.1.4.10) instead of the real one.
INS_TEST_IDENTITIES = env_bool("INS_TEST_IDENTITIES", DEBUG)
# Per client, per minute; over it the API answers 429 with Retry-After.
FHIR_RATE_LIMIT_PER_MINUTE = env_int("FHIR_RATE_LIMIT_PER_MINUTE", 120)
# Token requests per client id per minute (a token lasts FHIR_TOKEN_SECONDS).
FHIR_TOKEN_RATE_LIMIT_PER_MINUTE = env_int("FHIR_TOKEN_RATE_LIMIT_PER_MINUTE", 20)
# Documents a search answers at once (a client asks with _count, up to the maximum; the
# Bundle links to the next page).
FHIR_SEARCH_DEFAULT_COUNT = env_int("FHIR_SEARCH_DEFAULT_COUNT", 50)
FHIR_SEARCH_MAX_COUNT = 200
# The whole request body (a binary travels base64-encoded: 4/3 of its size, plus metadata).
FHIR_MAX_BODY_BYTES = env_int("FHIR_MAX_BODY_BYTES", 28 * 1024 * 1024)

# Email: console in development, SMTP in production.
MAILERS = {
    "default": {
        "BACKEND": env(
            "EMAIL_BACKEND",
            "portal.mail.ReadableConsoleBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
        ),
        "OPTIONS": {},
    }
}
if MAILERS["default"]["BACKEND"].endswith("smtp.EmailBackend"):
    MAILERS["default"]["OPTIONS"] = {
        "host": env("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 25),
        "username": env("EMAIL_HOST_USER", ""),
        "password": env("EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("EMAIL_USE_TLS", False),
        "timeout": 10,
    }
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Carnet <no-reply@carnet.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Security headers. The strict CSP applies everywhere; nonces for our own scripts.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    if env_bool("BEHIND_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Celery: JSON only, late acks so a dead worker's task is delivered again,
# one message at a time per process, time limits on everything.
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"  # a host named: kombu warns without one
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than any task may run, so an unacked task is redelivered only
        # when its worker is really gone.
        "visibility_timeout": 3600,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
else:
    _queue_dir = BASE_DIR / "var" / "celery-queue"
    for _folder in (_queue_dir, BASE_DIR / "var" / "celery-control"):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(BASE_DIR / "var" / "celery-control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_WORKER_MAX_MEMORY_PER_CHILD = 300_000  # KiB
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "celery")
CELERY_TIMEZONE = TIME_ZONE
# A running export keeps a short lease; when its worker dies, the sweep hands it to a
# live worker once the lease has expired (records/exports.py). An export queued while
# the broker was down is enqueued by the sweep once it is back. With these values a
# dead run is taken over within lease + sweep = 50 s, a queued one within 50 s of the
# broker's return (the sweep, plus at most 30 s for a worker to reconnect).
EXPORT_LEASE_SECONDS = env_int("EXPORT_LEASE_SECONDS", 30)
EXPORT_SWEEP_SECONDS = env_int("EXPORT_SWEEP_SECONDS", 20)
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "portal.tasks.heartbeat", "schedule": 60.0},
    "relay-notifications": {"task": "messaging.tasks.relay_notifications", "schedule": 60.0},
    "relay-pending-tasks": {"task": "portal.tasks.relay_pending_tasks", "schedule": 60.0},
    "relay-digests": {"task": "records.tasks.relay_digests", "schedule": 60.0},
    "sweep-unprocessed-documents": {"task": "records.tasks.sweep_unprocessed_documents", "schedule": 300.0},
    "sweep-exports": {"task": "records.export_tasks.sweep_exports", "schedule": float(EXPORT_SWEEP_SECONDS)},
    "clear-expired-sessions": {"task": "portal.tasks.clear_expired_sessions", "schedule": 3600.0},
    "purge-form-submissions": {"task": "portal.tasks.purge_form_submissions", "schedule": 3600.0},
    "check-audit-chains": {"task": "portal.audit.tasks.check_audit_chains", "schedule": 3600.0},
    "relay-report-copies": {"task": "portal.audit.tasks.relay_report_copies", "schedule": 300.0},
    # Parental representations end at 18 (idempotent: a second run ends and sends nothing).
    "end-minorities": {"task": "portal.representation.tasks.end_minorities", "schedule": crontab(hour=3, minute=15)},
    # Reminders: written every 5 minutes (a "2 hours before" goes out at most 5 minutes
    # late), their emails relayed every minute (the end of quiet hours, the broker back).
    "scan-reminders": {"task": "reminders.tasks.scan_reminders", "schedule": 300.0},
    "relay-reminders": {"task": "reminders.tasks.relay_due_reminders", "schedule": 60.0},
    "purge-old-reminders": {"task": "reminders.tasks.purge_old_reminders", "schedule": 86400.0},
}
# Who is mailed when the periodic check finds a broken link in the audit chains.
AUDIT_ALERT_EMAIL = env("AUDIT_ALERT_EMAIL", "")
# The data-protection contact (the privacy notice's): a copy of every access a patient flags.
DPO_EMAIL = OPERATOR["dpo_email"]
# Contact-form messages from one address in an hour before the form asks to wait.
SUPPORT_REQUESTS_PER_HOUR = env_int("SUPPORT_REQUESTS_PER_HOUR", 5)
# A web request must not hang when the broker is down: try briefly, then leave
# the work in the database for the periodic relays.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # A request line's query string can carry health data (a FHIR search by INS): cut off.
    "filters": {"no_query_string": {"()": "portal.logs.NoQueryString"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["no_query_string"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # Request lines can carry query strings; keep them out of production logs. Django's own
    # loggers lose the handlers of its default configuration (which print a message as it
    # is, before any filter): everything goes through the console handler above.
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True, "level": "INFO" if DEBUG else "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}
