"""Settings for the next-best-action console: one module, driven by the environment.

With no environment at all it runs the embedded default (SQLite file + Celery eager mode) so
`make run` needs nothing but Python. `DATABASE_URL` (PostgreSQL, psycopg 3) and `REDIS_URL` (Celery
broker and result backend, cache, contact-cap counters) switch it to the real stack.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# GENERAL
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/ref/settings/#debug
# Off unless asked for: a debug page shows the request, settings and local variables (customers'
# emails among them). `make run` and `make test` (and pytest, see pyproject.toml) turn it on for
# the embedded demo: the dev secret key, localhost, plain static files.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
_DEV_SECRET_KEY = "django-insecure-local-development-key-not-for-production"
SECRET_KEY = env("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else None)
if not SECRET_KEY:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG is false")
# Keys the hashes the suppression list keeps instead of CRM ids (crm_console.campaigns.suppression).
# Its own secret, not SECRET_KEY: rotating SECRET_KEY must not quietly empty the suppression list.
SUPPRESSION_HASH_KEY = env("DJANGO_SUPPRESSION_HASH_KEY",
                           default="local-development-suppression-key" if DEBUG else None)
if not SUPPRESSION_HASH_KEY:
    raise ImproperlyConfigured("Set DJANGO_SUPPRESSION_HASH_KEY when DJANGO_DEBUG is false")
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-gb"
USE_I18N = True
USE_TZ = True
ROOT_URLCONF = "crm_console.urls"
WSGI_APPLICATION = "crm_console.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# DATABASES
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/ref/settings/#databases
DATABASES = {
    "default": env.db(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
    )
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
VAR_DIR.mkdir(exist_ok=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Parameters travel apart from the SQL (no client-side quoting of every JSON value) and
    # psycopg prepares a statement once it has run twice: the decision loop's statements are then
    # planned once per connection, not on every request (Django leaves preparing off unless
    # asked). Behind a transaction-pooling PgBouncer older than 1.21, switch both off.
    _server_side = env.bool("DJANGO_DB_SERVER_SIDE_BINDING", default=True)
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("server_side_binding", _server_side)
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2 if _server_side else None)
else:
    # SQLite serialises writers; a generous timeout keeps the eager demo from "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

# APPS
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/ref/settings/#installed-apps
DJANGO_APPS = [
    "crm_console.accounts.admin_apps.ConsoleAdminConfig",  # django.contrib.admin, admins only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files: the docs work offline
    "django_filters",
    "django_htmx",
    "axes",  # login throttling: failed log-ins per username and address
]
LOCAL_APPS = [
    "crm_console.accounts",
    "crm_console.campaigns",
    "crm_console.customers",
    "crm_console.decisioning",
    "crm_console.training",
    "crm_console.compliance",
    "crm_console.dashboards",
    "crm_console.api",
    "crm_console.sfmc",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

# MIDDLEWARE
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/topics/http/middleware/
# LoginRequiredMiddleware: every page needs a login unless a view opts out explicitly.
# ContentSecurityPolicyMiddleware: SECURE_CSP below. ConsoleNotFoundMiddleware: the console's 404
# page instead of Django's URL listing while DEBUG is on. AxesMiddleware last, as django-axes asks: it
# turns a locked-out log-in into the lockout page.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "crm_console.not_found.ConsoleNotFoundMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

# AUTHENTICATION
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/topics/auth/
# The axes backend comes first: it refuses a locked-out username and address before any password
# is checked, on every log-in (the console's and the admin's, which is the same page).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboards:home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# LOGIN THROTTLING
# ------------------------------------------------------------------------------
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
# LOGIN_FAILURE_LIMIT wrong passwords for one username from one address lock that pair out for
# LOGIN_LOCKOUT_MINUTES, counted in the database (so across processes, and with Redis down). The
# pair, not the username alone: a stranger cannot lock a marketer out from elsewhere. Attempts
# during the lockout neither count nor extend it; a successful log-in clears the count. The
# address is REMOTE_ADDR: behind a proxy every visitor shares the proxy's, and the lock is then
# in effect per username.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "crm_console.accounts.views.login_locked_out"
AXES_DISABLE_ACCESS_LOG = True  # no record of every successful log-in: not needed, personal data
AXES_VERBOSE = False  # its log lines name only the (masked) username and address

# TEMPLATES AND STATIC FILES
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/ref/settings/#templates
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crm_console.accounts.context_processors.roles",
                "django.template.context_processors.csp",  # csp_nonce for an inline script
            ],
        },
    },
]
# https://docs.djangoproject.com/en/stable/ref/settings/#form-renderer
FORM_RENDERER = "crm_console.form_rendering.ConsoleFormRenderer"  # described-by ids that exist
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG  # serve from static/ directly while developing
MEDIA_ROOT = Path(env("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media")))

# CACHE, REDIS AND CELERY
# ------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
REDIS_URL = env("REDIS_URL", default="")
# A Redis that is down or hung must not hold a request for redis-py's default 5 s per command:
# connect and read give up after these, and a process that saw Redis fail leaves it alone for
# REDIS_RETRY_SECONDS (crm_console.shared_cache); the API answers 503 with that Retry-After where
# an operation cannot do without Redis.
REDIS_SOCKET_CONNECT_TIMEOUT = env.float("REDIS_SOCKET_CONNECT_TIMEOUT", default=0.5)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=1.0)
REDIS_RETRY_SECONDS = env.float("REDIS_RETRY_SECONDS", default=2.0)
REDIS_CACHE_OPTIONS = {"socket_connect_timeout": REDIS_SOCKET_CONNECT_TIMEOUT,
                       "socket_timeout": REDIS_SOCKET_TIMEOUT}
# "local": this process's own counters, where the API rate limit counts while Redis is down
_LOCAL_CACHE = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "local"}
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": REDIS_URL, "OPTIONS": REDIS_CACHE_OPTIONS},
        "local": _LOCAL_CACHE,
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
    # Redis hands an unacknowledged message to another worker after this long (acks_late): it
    # must outlast the longest training run, or a second worker starts the same run. A worker
    # that really died is found sooner by the beat's stale-run recovery (heartbeat > 2 min).
    # Only connecting is cut short for Celery: its reads include blocking waits for tasks and
    # results that a one-second read timeout would break.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=12 * 3600),
        "socket_connect_timeout": REDIS_SOCKET_CONNECT_TIMEOUT}
    CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_SOCKET_CONNECT_TIMEOUT
else:
    # room for the dashboard's per-day frames (one entry per campaign-day; the default is 300)
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                          "OPTIONS": {"MAX_ENTRIES": 20_000}},
              "local": _LOCAL_CACHE}
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {}  # nightly retrain/evaluate is registered by crm_console.training

# DJANGO REST FRAMEWORK
# ------------------------------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "crm_console.api.errors.api_exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "crm_console.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # per integration; a real-time CRM bursts well above 100k requests an hour
    "DEFAULT_THROTTLE_RATES": {"integration": env("API_THROTTLE_RATE", default="1000/second")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Next-best-action console API",
    "DESCRIPTION": "Events in (signed webhooks), decisions out.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# SECURITY
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/howto/deployment/checklist/
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the cookie-less template tag instead
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# https://docs.djangoproject.com/en/stable/ref/csp/
# Scripts only from our own static files (htmx, console.js, the Plotly bundle, Swagger UI, the
# admin's), or inline with the request's nonce (`nonce="{{ csp_nonce }}"`); charts' data are JSON
# blocks, which never run. Inline styles stay allowed: Plotly and htmx write <style> elements and
# style attributes, and the progress bars set their width in one.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# LOGGING: no personal data - customers appear by internal id only.
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/topics/logging/
# Database errors quote row data (PostgreSQL's DETAIL / CONTEXT): the filter withholds their text
# from every record, tracebacks included (Celery's handlers get it too: crm_console.celery).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"database_error_detail": {"()": "crm_console.log_filters.DatabaseErrorDetailFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["database_error_detail"]}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    # axes: lockouts are warnings; its every-log-in chatter is not worth the lines
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# PRODUCT
# ------------------------------------------------------------------------------
# Where trained policies are kept besides the database copy (checkpoints during training).
POLICY_CHECKPOINT_DIR = Path(env("POLICY_CHECKPOINT_DIR", default=str(VAR_DIR / "checkpoints")))
# The promotion guardrail (crm_console.decisioning.promotion): a candidate goes live when the lower
# bound of its estimated gain over the live policy (reward per customer-day) is above the margin
# and at least this many logged decisions' worth (effective sample size) speak for it.
GUARDRAIL_MARGIN = env.float("GUARDRAIL_MARGIN", default=0.0)
GUARDRAIL_MIN_EFFECTIVE_SAMPLE = env.int("GUARDRAIL_MIN_EFFECTIVE_SAMPLE", default=50)
# A trial (crm_console.decisioning.trials): a candidate deciding for a share of the customers
# goes live when, after the days it set out to measure (at least TRIAL_MIN_DAYS), with
# TRIAL_MIN_CUSTOMERS priced customers in each group, the lower bound of its measured gain
# (reward per customer-day) is above GUARDRAIL_MARGIN and its retention is neither significantly
# lower nor lower by more than TRIAL_RETENTION_TOLERANCE (a share) than the live group's.
TRIAL_MIN_DAYS = env.int("TRIAL_MIN_DAYS", default=14)
TRIAL_MIN_CUSTOMERS = env.int("TRIAL_MIN_CUSTOMERS", default=500)
TRIAL_RETENTION_TOLERANCE = env.float("TRIAL_RETENTION_TOLERANCE", default=0.01)
# Concurrent single-decision requests of one web process are decided together, at most this many
# per batch (crm_console.decisioning.batching); 1 decides every request alone.
DECISION_BATCH_MAX = env.int("DECISION_BATCH_MAX", default=64)

# MARKETING CLOUD JOURNEY BUILDER
# ------------------------------------------------------------------------------
# The installed package's JWT signing secret, used by a campaign's custom split activity whose
# own secret is blank (crm_console.sfmc); an admin normally pastes it on the campaign's page.
SFMC_JWT_SIGNING_SECRET = env("SFMC_JWT_SIGNING_SECRET", default="")
