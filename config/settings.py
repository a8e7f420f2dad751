"""Conveyor settings: every deployment choice comes from the environment.

The embedded default (no variable set) is SQLite in WAL mode, django-q2 on the
ORM broker, artifacts and logs under ``var/``. ``DATABASE_URL`` and ``REDIS_URL``
switch to PostgreSQL and Redis with the same code. See the README's table.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


VAR_DIR = Path(os.environ.get("CONVEYOR_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _dev_secret_key() -> str:
    """A per-checkout key kept under the git-ignored var/, never hard-coded."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY") or _dev_secret_key()
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "nested_admin",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "channels",
    "pipelines",
    "runners",
    "executions",
    "triggers",
    "approvals",
    "dashboard",
    "awsapi",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "conveyor.sqlite3",
            "TEST": {"NAME": os.environ.get("CONVEYOR_TEST_SQLITE") or None},
        }
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # IMMEDIATE is the part that matters: django-q2 workers and the web process
    # write concurrently, and a deferred transaction that upgrades to a write
    # fails with "database is locked" instead of waiting (STACK.md).
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: django-q2 broker and channel layer ------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")

Q_CLUSTER = {
    "name": "conveyor",
    "workers": int(os.environ.get("CONVEYOR_WORKERS", "4")),
    # timeout < retry with margin: a task running past `retry` is handed out again.
    # Long actions are not bounded by this: the engine's lease and action timeout are.
    "timeout": 60 * 60 * 24,
    "retry": 60 * 60 * 24 + 600,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "queue_limit": 50,
    "label": "Django Q2",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    # A 0.2 s poll would cost 204 ms per queue hop (STACK.md); 10 ms costs ~13 ms.
    Q_CLUSTER["poll"] = float(os.environ.get("CONVEYOR_Q_POLL", "0.01"))

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # socket_timeout None: with redis-py 8 an idle websocket otherwise dies
            # after ~5 s (channels_redis issue 422).
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Storage: artifacts and logs ---------------------------------------------
ARTIFACT_ROOT = Path(os.environ.get("CONVEYOR_ARTIFACT_ROOT", VAR_DIR / "artifacts"))
LOG_ROOT = Path(os.environ.get("CONVEYOR_LOG_ROOT", VAR_DIR / "logs"))
WORKSPACE_ROOT = Path(os.environ.get("CONVEYOR_WORKSPACE_ROOT", VAR_DIR / "workspaces"))

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ARTIFACT_ROOT)},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Execution engine -------------------------------------------------------
# A running action's worker renews its lease every third of this; the sweeper
# fails an action whose lease expired ("worker lost").
CONVEYOR_LEASE_SECONDS = float(os.environ.get("CONVEYOR_LEASE_SECONDS", "30"))
# How often the sweeper runs: the django-q2 schedule (at least a minute) and
# `manage.py sweep_actions --loop`.
CONVEYOR_SWEEP_SECONDS = float(os.environ.get("CONVEYOR_SWEEP_SECONDS", "60"))
# How long a dispatched action may wait for a worker before it is handed out again.
CONVEYOR_DISPATCH_SECONDS = float(os.environ.get("CONVEYOR_DISPATCH_SECONDS", "300"))
# How often a worker checks a running action (lease, abandon) — at most lease/3.
CONVEYOR_HEARTBEAT_SECONDS = float(os.environ.get("CONVEYOR_HEARTBEAT_SECONDS", "2"))
# Timeout of an action that sets no timeoutInMinutes and whose runner has no default.
CONVEYOR_DEFAULT_TIMEOUT_MINUTES = int(os.environ.get("CONVEYOR_DEFAULT_TIMEOUT_MINUTES", "60"))
# Ended executions older than this many days are pruned daily, with their logs and
# unreferenced artifacts (executions.retention; unset or 0: kept forever).
CONVEYOR_RETENTION_DAYS = int(os.environ.get("CONVEYOR_RETENTION_DAYS", "0") or 0)

# --- Runners and change detection -------------------------------------------
# How often Git sources with DetectChanges "true" are polled (0: never). The
# django-q2 schedule counts whole minutes; `manage.py poll_sources --loop` any period.
CONVEYOR_POLL_SECONDS = float(os.environ.get("CONVEYOR_POLL_SECONDS", "60"))
# Bare mirrors of the repositories Git sources fetch from.
CONVEYOR_GIT_CACHE_ROOT = Path(os.environ.get("CONVEYOR_GIT_CACHE_ROOT", VAR_DIR / "git-cache"))
# CodeBuild's cache.paths, kept per build project between its builds.
CONVEYOR_BUILD_CACHE_ROOT = Path(os.environ.get("CONVEYOR_BUILD_CACHE_ROOT",
                                                VAR_DIR / "build-cache"))
# SECRETS_MANAGER variables: CONVEYOR_SECRET_<NAME> in the worker's environment,
# else the file <CONVEYOR_SECRETS_DIR>/<name>.
CONVEYOR_SECRETS_DIR = Path(os.environ.get("CONVEYOR_SECRETS_DIR", VAR_DIR / "secrets"))

# --- Auth, static, i18n -----------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# ModelBackend with a user's permissions in one query compiled once (config/auth_backends.py).
AUTHENTICATION_BACKENDS = ["config.auth_backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request without it
STATICFILES_DIRS = [BASE_DIR / "static"]

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "conveyor@localhost")
# Where people and git hooks reach this installation (links in emails, the demo hook).
CONVEYOR_BASE_URL = os.environ.get(
    "CONVEYOR_BASE_URL", f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
)

# --- Integrations (docs/integrations.md) --------------------------------------
CONVEYOR_NOTIFY_TIMEOUT = float(os.environ.get("CONVEYOR_NOTIFY_TIMEOUT", "5"))
CONVEYOR_NOTIFY_ATTEMPTS = int(os.environ.get("CONVEYOR_NOTIFY_ATTEMPTS", "5"))
CONVEYOR_NOTIFY_CONCURRENCY = int(os.environ.get("CONVEYOR_NOTIFY_CONCURRENCY", "1"))
CONVEYOR_SCHEDULE_GRACE_SECONDS = float(os.environ.get("CONVEYOR_SCHEDULE_GRACE_SECONDS",
                                                       "3600"))
CONVEYOR_STATUS_ATTEMPTS = int(os.environ.get("CONVEYOR_STATUS_ATTEMPTS", "5"))

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "pipelines.api.parsers.YAMLParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Conveyor API",
    "DESCRIPTION": "Pipelines, executions and approvals, in CodePipeline's vocabulary.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Several "status" fields with different value sets: name each set's enum.
    "ENUM_NAME_OVERRIDES": {
        "PipelineExecutionStatusEnum": "executions.choices.PipelineExecutionStatus",
        "StageExecutionStatusEnum": "executions.choices.StageExecutionStatus",
        "ActionExecutionStatusEnum": "executions.choices.ActionExecutionStatus",
        "ApprovalStatusEnum": "approvals.choices.ApprovalStatus",
        "DecisionStatusEnum": "approvals.choices.DecisionStatus",
    },
    # The docs page is served from this server (drf-spectacular-sidecar), no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema and docs answer signed-in callers only, like every API endpoint.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {
        "conveyor": {"level": os.environ.get("LOG_LEVEL", "INFO"), "propagate": True},
    },
}
