"""Conveyor settings: every deployment choice comes from the environment.

The embedded default (no variable set) is SQLite in WAL mode, django-q2 on the
ORM broker, artifacts and logs under ``var/``. ``DATABASE_URL`` and ``REDIS_URL``
switch to PostgreSQL and Redis with the same code. See the README's table.
"""

import os
import secrets
from datetime import timedelta
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
# Off unless a developer turns it on (DEBUG=true): Django's debug page shows settings,
# paths and versions to whoever makes a request fail. `make run` serves static files
# through whitenoise and has readable error pages without it.
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# --- HTTPS (docs/deploy.md) ---------------------------------------------------
# CONVEYOR_HTTPS=true when people reach Conveyor over TLS (usually through a proxy that
# sets X-Forwarded-Proto): secure cookies, a redirect of plain HTTP, and HSTS.
CONVEYOR_HTTPS = env_bool("CONVEYOR_HTTPS", False)
if CONVEYOR_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Load balancers probe the health endpoints over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("CONVEYOR_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("CONVEYOR_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("CONVEYOR_HSTS_PRELOAD", False)
# security.W021: preloading is a request to browser vendors an operator makes for a whole
# domain, not a default a program can choose (CONVEYOR_HSTS_PRELOAD=true opts in).
# models.W040: SQLite keeps no INCLUDE columns (executions_pe_counted_idx's, there for a
# PostgreSQL index-only scan); its key columns still index the rows. Without this,
# every ``migrate`` on the embedded default (``make run``) printed the warning.
SILENCED_SYSTEM_CHECKS = ["security.W021", "models.W040"]
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): only this server's own scripts, styles and
# connections (websockets included); no inline script or style anywhere in the dashboard
# (server-computed geometry travels in data-css, applied by static/conveyor.js). The
# API docs page (third-party Swagger UI) alone also allows inline styles (config/urls.py);
# the browsable API's pages allow DRF's own two by hash (config/browsable_api.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

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
    "csp",
    "axes",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "channels",
    "pipelines",
    "teams",
    "runners",
    "executions",
    "triggers",
    "approvals",
    "dashboard",
    "awsapi",
    "config",
    "observability",
    "notifications",
    "jobs",
    "conditions",
    "agents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Acts recorded in the audit trail name the surface they came through.
    "observability.audit.AuditSurfaceMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: answers a locked-out sign-in with 429.
    "axes.middleware.AxesMiddleware",
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
                "dashboard.context_processors.sandbox_warning",
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
    # One queue per installation sharing a Redis (the agents' live tests run one each).
    "name": os.environ.get("CONVEYOR_QUEUE_NAME", "conveyor"),
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
# Job workers (docs/job-workers.md): a polled job not acknowledged within this many
# seconds times out (AWS publishes no figure); an acknowledged one without a result
# within CONVEYOR_JOB_RESULT_SECONDS (AWS's one-hour action quota); a continuation
# is offered again after CONVEYOR_JOB_CONTINUATION_SECONDS.
CONVEYOR_JOB_ACK_SECONDS = float(os.environ.get("CONVEYOR_JOB_ACK_SECONDS", "60"))
CONVEYOR_JOB_RESULT_SECONDS = float(os.environ.get("CONVEYOR_JOB_RESULT_SECONDS", "3600"))
CONVEYOR_JOB_CONTINUATION_SECONDS = float(os.environ.get("CONVEYOR_JOB_CONTINUATION_SECONDS",
                                                         "0"))
# Ended executions older than this many days are pruned daily, with their logs and
# unreferenced artifacts (executions.retention; unset or 0: kept forever).
CONVEYOR_RETENTION_DAYS = int(os.environ.get("CONVEYOR_RETENTION_DAYS", "0") or 0)

# --- Observability -----------------------------------------------------------
# The bearer token Prometheus presents at /metrics (unset: staff sessions only).
CONVEYOR_METRICS_TOKEN = os.environ.get("CONVEYOR_METRICS_TOKEN", "")
# How long a process reuses one scrape's figures (several scrapers, one set of queries).
CONVEYOR_METRICS_CACHE_SECONDS = float(os.environ.get("CONVEYOR_METRICS_CACHE_SECONDS", "5"))

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

# --- The sandbox of build commands (runners/sandbox.py, docs/security.md) --
# auto: bubblewrap when it works here, else run unsandboxed and warn; required: refuse
# to run commands without it (production); none: run unsandboxed on purpose.
CONVEYOR_SANDBOX = os.environ.get("CONVEYOR_SANDBOX", "auto").strip().lower()
if CONVEYOR_SANDBOX not in ("auto", "required", "none"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f'CONVEYOR_SANDBOX="{CONVEYOR_SANDBOX}": use "auto", "required" or "none"')
CONVEYOR_SANDBOX_BWRAP = os.environ.get("CONVEYOR_SANDBOX_BWRAP", "")  # "": bwrap on PATH
# The uid commands run as when the worker runs as root (the kernel does not limit
# root's processes). Ignored when the worker is not root.
CONVEYOR_SANDBOX_UID = int(os.environ.get("CONVEYOR_SANDBOX_UID", "65534"))
# More read-only folders of the system a build may use (e.g. /opt/toolchains).
CONVEYOR_SANDBOX_SYSTEM_PATHS = env_list("CONVEYOR_SANDBOX_SYSTEM_PATHS", "")


def _limits(prefix: str, defaults: dict[str, int]) -> dict[str, int]:
    return {name: int(os.environ.get(f"{prefix}{name.upper()}", value))
            for name, value in defaults.items()}


# An action's limits when it sets none (CONVEYOR_SANDBOX_MEMORY_MIB=…), and the most
# an action may ask for with configuration.Limit* (CONVEYOR_SANDBOX_MAX_MEMORY_MIB=…).
CONVEYOR_SANDBOX_LIMITS = _limits("CONVEYOR_SANDBOX_", {
    "memory_mib": 4096, "processes": 1024, "file_size_mib": 16384, "open_files": 4096,
    "cpu_seconds": 3600})
CONVEYOR_SANDBOX_MAX_LIMITS = _limits("CONVEYOR_SANDBOX_MAX_", {
    "memory_mib": 148480, "processes": 32768, "file_size_mib": 843776, "open_files": 65536,
    "cpu_seconds": 86400})
# Deploy Directory targets must lie under one of these folders (empty: anywhere but
# Conveyor's own code and state).
CONVEYOR_DEPLOY_ROOTS = [Path(p) for p in env_list("CONVEYOR_DEPLOY_ROOTS", "")]
# Invoke Python calls only functions in modules under these prefixes (empty: none).
CONVEYOR_INVOKE_MODULES = env_list("CONVEYOR_INVOKE_MODULES", "")
# Outbound requests to URLs from definitions (Invoke Webhook, NotificationWebhook) may
# not reach loopback, link-local, private or reserved addresses except these CIDRs or
# host names (config/outbound.py), e.g. "10.1.0.0/16,hooks.internal".
CONVEYOR_OUTBOUND_ALLOW = env_list("CONVEYOR_OUTBOUND_ALLOW", "")

# --- Auth, static, i18n -----------------------------------------------------
# Django's full set: "password" and "12345678" are refused (common, numeric).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out sign-in before any password is checked.
# ModelBackend with a user's permissions in one query compiled once (config/auth_backends.py).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend",
                           "config.auth_backends.ModelBackend"]
# Sign-in lock-out (django-axes): after CONVEYOR_SIGNIN_FAILURES wrong passwords for one
# user name, or from one address, that user name or address is refused for
# CONVEYOR_SIGNIN_LOCK_MINUTES (a success resets the count; `manage.py axes_reset` unlocks).
AXES_FAILURE_LIMIT = int(os.environ.get("CONVEYOR_SIGNIN_FAILURES", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("CONVEYOR_SIGNIN_LOCK_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
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
# whitenoise also serves from the apps' and static/ folders, not only from collectstatic's
# STATIC_ROOT: with DEBUG off by default, a server started without collectstatic (the
# browser tests', a developer's) still has its scripts and styles.
WHITENOISE_USE_FINDERS = True

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
# API tokens (config/api_auth.py): lifetime of a new token, and how many wrong tokens an
# address may send in five minutes before it is answered 429.
CONVEYOR_TOKEN_DAYS = float(os.environ.get("CONVEYOR_TOKEN_DAYS", "90"))
CONVEYOR_TOKEN_FAILURES = int(os.environ.get("CONVEYOR_TOKEN_FAILURES", "20"))
REST_KNOX = {"AUTH_HEADER_PREFIX": "Token", "TOKEN_TTL": None, "AUTO_REFRESH": False}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Hashed, expiring tokens (django-rest-knox) with a back-off per address.
        "config.api_auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The browsable API's own inline styles allowed by hash on its pages alone.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "config.browsable_api.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        # Bounded in size and depth (config/bodies.py); YAML only where a definition
        # document is expected (pipelines.api.views.DEFINITION_PARSERS).
        "pipelines.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Per signed-in user and per address without credentials (429 beyond); wrong tokens
    # have their own, stricter back-off (config/api_auth.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("CONVEYOR_API_RATE", "6000/min"),
        "anon": os.environ.get("CONVEYOR_ANON_RATE", "600/min"),
    },
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

# LOG_FORMAT=json: one JSON object per line, with the pipeline, execution, stage and
# action a line is about (observability/logs.py); anything else: plain text.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "observability.logs.ContextFilter"}},
    "formatters": {"json": {"()": "observability.logs.JsonFormatter"}},
    "handlers": {"console": {
        "class": "logging.StreamHandler",
        "filters": ["context"],
        **({"formatter": "json"} if LOG_FORMAT == "json" else {}),
    }},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {
        "conveyor": {"level": os.environ.get("LOG_LEVEL", "INFO"), "propagate": True},
    },
}
