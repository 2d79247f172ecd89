"""Scriptorium settings: 12-factor, every knob an environment variable with a laptop default.

`make run` / `make test` start an embedded PostgreSQL and Redis (platform_core/embedded.py) and
export DATABASE_URL / REDIS_URL before Django reads this file; set them yourself to use real ones.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-secret-key-change-me-in-production-0123456789")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "*").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]
APP_VERSION = "0.1.0"

# --- Tenancy (django-tenants): see ARCHITECTURE.md "Tenancy" -------------------------------------
SHARED_APPS = [
    # `tenants` precedes django_tenants so its migrate_schemas (template + warm pool) wins.
    "tenants",
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "rest_framework",
    "drf_spectacular",
    "allauth",
    "allauth.account",
    "channels",
    "platform_core",
    "accounts",
    "billing",
    "sso",
    "realtime",
]
TENANT_APPS = [
    "workspaces",
    "labeling",
    "storages",
]
INSTALLED_APPS = ["daphne"] + SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Organization"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# New organizations never replay migration history: they take a renamed warm-pool schema or a
# clone of this template schema (tenants/services.py).
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_WARM_POOL_SIZE = int(os.environ.get("TENANT_WARM_POOL_SIZE", "10"))
ORGANIZATION_DELETION_GRACE = timedelta(days=int(os.environ.get("ORGANIZATION_DELETION_GRACE_DAYS", "30")))
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
# Set search_path once per schema switch instead of before every query (one round trip each).
TENANT_LIMIT_SET_CALLS = True

MIDDLEWARE = [
    "tenants.middleware.TenantRoutingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.OrganizationAccessMiddleware",
    # Sessions made by an organization's SAML login reach that organization only; SSO-only
    # organizations take no other session (sso/sessions.py).
    "sso.sessions.SsoSessionMiddleware",
    # Browser sessions of members: the organization's session policy (max age, max idle time).
    "accounts.session_policy.SessionPolicyMiddleware",
    # After the membership check: records members' /api/ calls in their organization's schema.
    "labeling.activity.ActivityLogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "platform_core.urls_tenant"
PUBLIC_SCHEMA_URLCONF = "platform_core.urls_public"
WSGI_APPLICATION = "platform_core.wsgi.application"
ASGI_APPLICATION = "platform_core.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "platform_core" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.organization",
                "billing.context_processors.billing_banner",
                "sso.context_processors.logout_action",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/scriptorium")
DATABASE_POOL = env_bool("DATABASE_POOL", True)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
if DATABASE_POOL:
    # Requests, websocket consumers and Celery tasks run on many threads: a pool saves a
    # connection set-up per request and bounds the total. Connections are recycled after
    # `max_lifetime` (a backend that touched many schemas holds a large catalog cache).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": int(os.environ.get("DATABASE_POOL_MIN", "2")),
        "max_size": int(os.environ.get("DATABASE_POOL_MAX", "20")),
        "max_lifetime": float(os.environ.get("DATABASE_POOL_LIFETIME", "600")),
        "timeout": 30,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("CONN_MAX_AGE", "300"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads serving HTTP requests in each daphne process (platform_core/asgi.py); keep it at or
# below DATABASE_POOL_MAX so no request waits for a connection.
HTTP_THREADS = int(os.environ.get("HTTP_THREADS", "16"))

# --- Redis, cache, Celery, Channels -------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Deployments (or test runs) that share one Redis keep their cache entries apart with a prefix.
CACHE_KEY_PREFIX = os.environ.get("CACHE_KEY_PREFIX", "")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    },
    # Keys that name their organization themselves (public-schema data such as permission
    # overrides): the same entry whichever schema the connection is on.
    "shared": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{CACHE_KEY_PREFIX}shared",
    },
}
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Enqueueing happens in request paths (after commit): fail fast rather than hang on a dead broker.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BEAT_SCHEDULE = {
    "refill-warm-schema-pool": {"task": "tenants.refill_warm_pool", "schedule": 60.0},
    "purge-deleted-organizations": {"task": "tenants.purge_deleted_organizations", "schedule": 3600.0},
    "purge-activity-logs": {"task": "labeling.purge_activity_logs", "schedule": 24 * 3600.0},
}
# --- Realtime (realtime/) -----------------------------------------------------------------------
# RedisPubSubChannelLayer: a group send is one PUBLISH that each process fans out to its own
# sockets; the core layer pushes one message per member (bench/realtime.py measures both).
CHANNEL_LAYER_BACKEND = os.environ.get("CHANNEL_LAYER_BACKEND", "channels_redis.pubsub.RedisPubSubChannelLayer")
CHANNEL_LAYERS = {
    "default": {"BACKEND": CHANNEL_LAYER_BACKEND, "CONFIG": {
        "hosts": [REDIS_URL], "prefix": f"{CACHE_KEY_PREFIX}asgi",
        # The core layer's backlog per channel: each process reads one (realtime/hub.py). The
        # pub/sub layer keeps none and ignores it.
        "capacity": 10000,
    }}
}
# A websocket ticket (POST /api/realtime/ticket) is good for one connection within this time.
REALTIME_TICKET_TTL_SECONDS = int(os.environ.get("REALTIME_TICKET_TTL_SECONDS", "60"))
# Clients send something at least every 30 s; a socket silent this long is closed (4408) and
# no longer counts for presence or for the tabs sharing a lock.
REALTIME_IDLE_TIMEOUT_SECONDS = float(os.environ.get("REALTIME_IDLE_TIMEOUT_SECONDS", "75"))
# An open socket checks again this often that its person may still use it (membership, project
# access, the session): what no event announces (a project or workspace left, a logout) ends it.
REALTIME_ACCESS_RECHECK_SECONDS = float(os.environ.get("REALTIME_ACCESS_RECHECK_SECONDS", "30"))
# Project events go to this process's sockets as one frame built once and written straight to
# each socket (realtime/wire.py); off: through daphne's ASGI send, socket by socket.
REALTIME_DIRECT_WRITES = env_bool("REALTIME_DIRECT_WRITES", True)
# How often the beat job announces and removes expired task locks.
REALTIME_LOCK_SWEEP_SECONDS = float(os.environ.get("REALTIME_LOCK_SWEEP_SECONDS", "5"))
CELERY_BEAT_SCHEDULE["sweep-expired-task-locks"] = {
    "task": "realtime.sweep_expired_locks", "schedule": REALTIME_LOCK_SWEEP_SECONDS,
    # A sweep still queued when the next is due is dropped, not run twice.
    "options": {"expires": REALTIME_LOCK_SWEEP_SECONDS},
}

# --- Accounts -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"
# Email: printed to the console unless configured. SMTP: EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend
# with EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS. An email service
# through django-anymail (`pip install "scriptorium[email]"`): EMAIL_PROVIDER=<anymail backend name,
# e.g. amazon_ses, mailgun, postmark, sendgrid, brevo, resend> and its settings as ANYMAIL_<NAME>
# variables (ANYMAIL_MAILGUN_API_KEY=..., ANYMAIL_MAILGUN_SENDER_DOMAIN=...).
EMAIL_PROVIDER = os.environ.get("EMAIL_PROVIDER", "").strip().lower()
if EMAIL_PROVIDER:
    EMAIL_BACKEND = f"anymail.backends.{EMAIL_PROVIDER}.EmailBackend"
    ANYMAIL = {name.removeprefix("ANYMAIL_"): value for name, value in os.environ.items()
               if name.startswith("ANYMAIL_")}
else:
    EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Scriptorium <no-reply@scriptorium.local>")
# The site's address in links sent by email (invitations), e.g. https://labels.example.com. Empty:
# the address of the request that sent them.
PUBLIC_URL = os.environ.get("PUBLIC_URL", "").rstrip("/")
# The SDK's bulk deletes (project and workspace members) send every id as a repeated query
# parameter: allow as many as a bulk call may name (a proxy in front needs large enough URL buffers).
DATA_UPLOAD_MAX_NUMBER_FIELDS = int(os.environ.get("DATA_UPLOAD_MAX_NUMBER_FIELDS", "100000"))
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(14 * 24 * 3600)))

# API tokens (accounts/tokens.py): PATs are JWT refresh tokens; access tokens are short-lived.
JWT_SIGNING_KEY = os.environ.get("JWT_SIGNING_KEY", SECRET_KEY)
JWT_ACCESS_TOKEN_LIFETIME = timedelta(minutes=int(os.environ.get("JWT_ACCESS_TOKEN_MINUTES", "5")))

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.OrganizationTokenAuthentication",
        "accounts.authentication.OrganizationSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.access.MatrixPermission"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "platform_core.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {"TITLE": "Scriptorium API", "VERSION": APP_VERSION}

# --- Static, i18n -------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / ".data" / "static"
# Label Studio's editor bundle (npm, installed by `make` into node_modules/, never committed), at
# /static/label-studio/js/main.js and /static/label-studio/css/main.css.
LABEL_STUDIO_BUNDLE_DIR = BASE_DIR / "node_modules" / "@heartexlabs" / "label-studio" / "build" / "static"
STATICFILES_DIRS = [("label-studio", LABEL_STUDIO_BUNDLE_DIR)]
# daphne serves /static/ itself (platform_core/asgi.py, straight from the finders, before any
# middleware: the files are public). Set false where a CDN or proxy serves `collectstatic`'s output.
SERVE_STATIC_FILES = env_bool("SERVE_STATIC_FILES", True)
# Uploaded files and export snapshots. Object storage (S3/MinIO) replaces this when configured.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / ".data" / "media"))

# --- Media storage: local files, or S3/MinIO when MINIO_STORAGE_ENDPOINT is set -------------------
# S3 backend: django-storages, importable beside our `storages` app (see storages/__init__.py).
MINIO_STORAGE_ENDPOINT = os.environ.get("MINIO_STORAGE_ENDPOINT", "")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if MINIO_STORAGE_ENDPOINT:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "endpoint_url": MINIO_STORAGE_ENDPOINT,
            "bucket_name": os.environ.get("MINIO_STORAGE_BUCKET_NAME", "scriptorium"),
            "access_key": os.environ.get("MINIO_STORAGE_ACCESS_KEY", ""),
            "secret_key": os.environ.get("MINIO_STORAGE_SECRET_KEY", ""),
            "region_name": os.environ.get("MINIO_STORAGE_REGION", "us-east-1"),
            "signature_version": "s3v4",
            "addressing_style": "path",
            # Files are served through redirects to presigned URLs that expire soon.
            "querystring_auth": True,
            "querystring_expire": int(os.environ.get("MEDIA_URL_EXPIRE_SECONDS", "300")),
            # Names are unique per upload (its id is in the path): skip the existence check per save.
            "file_overwrite": True,
        },
    }
# Uploaded documents (labeling/uploads.py): per-file size cap, PDF page cap and page rendering.
UPLOAD_MAX_FILE_BYTES = int(os.environ.get("UPLOAD_MAX_FILE_BYTES", str(200 * 1024 * 1024)))
UPLOAD_PDF_MAX_PAGES = int(os.environ.get("UPLOAD_PDF_MAX_PAGES", "100"))
# 2 = 144 dpi; a page's longer side is capped so an oversized page cannot make a huge bitmap.
UPLOAD_PDF_RENDER_SCALE = float(os.environ.get("UPLOAD_PDF_RENDER_SCALE", "2"))
UPLOAD_PDF_MAX_PAGE_PIXELS = int(os.environ.get("UPLOAD_PDF_MAX_PAGE_PIXELS", "4000"))
# Snapshots of projects up to this many tasks are built in the request; larger ones by Celery.
EXPORT_INLINE_MAX_TASKS = int(os.environ.get("EXPORT_INLINE_MAX_TASKS", "50000"))
# Imports up to this many tasks answer synchronously (like LS Community); larger ones are jobs.
IMPORT_SYNC_MAX_TASKS = int(os.environ.get("IMPORT_SYNC_MAX_TASKS", "100000"))
# How long a task handed out by the label stream stays reserved (projects may override).
TASK_LOCK_TTL_SECONDS = int(os.environ.get("TASK_LOCK_TTL_SECONDS", "600"))
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Keys for secrets stored encrypted (platform_core/crypto.py), newest first, comma-separated.
FIELD_ENCRYPTION_KEYS = [
    key.strip() for key in os.environ.get("FIELD_ENCRYPTION_KEYS", f"derived:{SECRET_KEY}").split(",") if key.strip()
]

# --- Outgoing requests to user-given URLs (platform_core/ssrf.py) ------------------------------------
# `host:port` endpoints let through the SSRF guard although they resolve to private addresses
# (e.g. an intranet receiver), comma-separated. Empty by default: only public addresses.
# --- Billing (billing/) -------------------------------------------------------------------------------
# The plan (its code) a new organization starts on; plans are rows (billing.Plan), seeded by a migration.
BILLING_SIGNUP_PLAN = os.environ.get("BILLING_SIGNUP_PLAN", "trial")
# Days a past-due organization keeps working before it turns read-only.
BILLING_GRACE_DAYS = int(os.environ.get("BILLING_GRACE_DAYS", "7"))
# Stripe: the secret key for API calls, the webhook signing secret, and (tests) a local API base.
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")
CELERY_BEAT_SCHEDULE["billing-trials-end"] = {"task": "billing.trials_end", "schedule": 3600.0}
# IdP metadata fetched again from its URL (certificate rollover), daily.
CELERY_BEAT_SCHEDULE["refresh-saml-metadata"] = {"task": "sso.refresh_saml_metadata", "schedule": 24 * 3600.0}
CELERY_BEAT_SCHEDULE["billing-usage-reconcile"] = {"task": "billing.usage_reconcile_all", "schedule": 6 * 3600.0}

# --- Cloud storages (storages/) --------------------------------------------------------------------
# Local-files storages: each organization's folder is <root>/<organization slug>/; empty = off.
LOCAL_FILES_DOCUMENT_ROOT = os.environ.get("LOCAL_FILES_DOCUMENT_ROOT", "")
# Emulators or sovereign clouds (operator settings, not user input): Google's API endpoint, and
# the Azure blob endpoint as a template ("http://127.0.0.1:10000/{account_name}" for Azurite).
GCS_API_ENDPOINT = os.environ.get("GCS_API_ENDPOINT", "")
AZURE_BLOB_ENDPOINT = os.environ.get("AZURE_BLOB_ENDPOINT", "")
SSRF_PROTECTION_ALLOWLIST = [h.strip() for h in os.environ.get("SSRF_PROTECTION_ALLOWLIST", "").split(",") if h.strip()]

# --- SAML single sign-on (sso/saml.py) --------------------------------------------------------------
# How long an AuthnRequest we sent may be answered: the person signs in at the IdP (MFA included)
# within it. The IdP's answer must also hold an assertion that has not expired.
SAML_AUTHN_REQUEST_TTL_SECONDS = int(os.environ.get("SAML_AUTHN_REQUEST_TTL_SECONDS", "900"))

# --- Webhooks (labeling/webhooks.py) --------------------------------------------------------------
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "5"))
# Attempts in all (the first one included); transient failures wait BACKOFF * 2^(attempt-1) seconds.
WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "5"))
WEBHOOK_RETRY_BACKOFF_SECONDS = float(os.environ.get("WEBHOOK_RETRY_BACKOFF_SECONDS", "10"))
# Celery queue of delivery jobs; empty: the default queue.
WEBHOOK_DELIVERY_QUEUE = os.environ.get("WEBHOOK_DELIVERY_QUEUE", "")

# --- Activity log (labeling/activity.py) ----------------------------------------------------------
ACTIVITY_LOG_ENABLED = env_bool("ACTIVITY_LOG_ENABLED", True)
ACTIVITY_LOG_RETENTION_DAYS = int(os.environ.get("ACTIVITY_LOG_RETENTION_DAYS", "180"))
# How many reverse proxies in front of the app append to X-Forwarded-For; 0: trust REMOTE_ADDR only.
ACTIVITY_LOG_TRUSTED_PROXIES = int(os.environ.get("ACTIVITY_LOG_TRUSTED_PROXIES", "0"))
