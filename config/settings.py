"""Django settings for the alloysync project: the one place that wires the apps together.

Every setting an operator may change comes from the environment (see the README's configuration
table: those names are public), read strictly by the helpers in ``config.env``, ``config.env_urls``
and ``config.env_secrets``: a bad value stops the process at start-up with one line naming the
variable (``SettingError``). The defaults serve a new user with no servers at all: SQLite and
kombu's filesystem broker under ``var/``.
"""

from pathlib import Path
from typing import Any

import django_stubs_ext

from config.env import (
    SettingError,
    choice,
    code,
    email_addresses,
    email_sender,
    flag,
    fraction,
    host_names,
    modules,
    seconds,
    text,
    time_zone,
    whole_number,
)
from config.env_secrets import RedactedText, Secret, read_secret
from config.env_urls import alloy_base_url, broker_url, database_config, email_config, web_url

# Lets Django's generic classes be subscripted at run time (ModelAdmin[Job]), as mypy wants them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

# Runtime files of the embedded setup (the filesystem broker's folders, the demo's logs).
_VAR_DIR = text("VAR_DIR", str(BASE_DIR / "var"))
if not _VAR_DIR:
    raise SettingError("VAR_DIR must be a folder's path, got ''")
VAR_DIR = Path(_VAR_DIR)

# A key that is fine on a laptop and refused anywhere DEBUG is off.
_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105 - refused when DEBUG is off


DEBUG = flag("DJANGO_DEBUG", True)
# A str for Django (signing reads it as text); its repr is masked for settings dumps.
SECRET_KEY = RedactedText((read_secret("DJANGO_SECRET_KEY") or "").strip() or _DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise SettingError("DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set when DJANGO_DEBUG is false")
# Django's own rule for a production key (check --deploy's W009), enforced at start-up, not only warned.
if not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise SettingError(
        "DJANGO_SECRET_KEY must be at least 50 characters with at least 5 different ones when DJANGO_DEBUG is "
        "false (the key is not shown); make one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
ALLOWED_HOSTS = host_names("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# Read whatever DEBUG is, so a typo fails on a laptop too, not first in production.
_SSL_REDIRECT = flag("DJANGO_SECURE_SSL_REDIRECT", True)
_HSTS_SECONDS = whole_number("DJANGO_SECURE_HSTS_SECONDS", 31536000, minimum=0)
_HSTS_INCLUDE_SUBDOMAINS = flag("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
_HSTS_PRELOAD = flag("DJANGO_SECURE_HSTS_PRELOAD", True)
if not DEBUG:
    # Production sits behind a TLS-terminating proxy that sets X-Forwarded-Proto. `manage.py check
    # --deploy` is clean with these. /healthz stays reachable over plain HTTP for health checks.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _SSL_REDIRECT
    # Load balancers' health checks and Prometheus' scrapes come over plain HTTP inside the deployment
    # (Prometheus cannot send X-Forwarded-Proto); a redirect to https://web:8000/ would fail them all.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _HSTS_SECONDS
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _HSTS_INCLUDE_SUBDOMAINS
    SECURE_HSTS_PRELOAD = _HSTS_PRELOAD

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "scheduler.apps.SchedulerConfig",
    "alloysync.apps.AlloysyncConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Chunked bodies refused (Django would read them as empty); API answers kept out of shared caches.
    "config.middleware.RequestBodyRules",
    # Serves the admin's static files from gunicorn; no separate web server needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


def _database_from_env() -> dict[str, Any]:
    database = database_config("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    if database["ENGINE"] == "django.db.backends.postgresql":
        # Each task would otherwise open its own connection (about 14 ms here, more than the run
        # path's own queries): kept for a minute and checked before reuse, a worker runs 1,000 due
        # jobs 1.5 times as fast (bench/load_bench.py). ?conn_max_age=0 in the URL turns it off.
        # https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections
        database.setdefault("CONN_MAX_AGE", 60)
        database.setdefault("CONN_HEALTH_CHECKS", True)
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # The web server, a worker and beat share one SQLite file in the embedded setup: WAL lets
        # readers run beside a writer, IMMEDIATE transactions avoid lock-upgrade deadlocks, and the
        # timeout makes a writer wait its turn instead of failing with "database is locked".
        database.setdefault("OPTIONS", {}).update(
            {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
    return database


DATABASES = {"default": _database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Let whitenoise find the admin's files in the apps too, so a server started without collectstatic
# (the demo, a quick gunicorn) still has its styles.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "admin:login"

# --- Jobs -------------------------------------------------------------------------------------
# Modules imported at start-up; their @job_function decorators fill the registry. Nothing else is
# ever imported on behalf of a job: names from Alloy are looked up in the registry only.
JOB_MODULES = modules("JOB_MODULES", ["jobs.examples"])
JOB_DEFAULT_TIMEZONE = time_zone("JOB_DEFAULT_TIMEZONE", "UTC")
JOB_TIME_LIMIT = seconds("JOB_TIME_LIMIT", 3600)
# A run missed while no beat ran is sent once when beat is back if it was due within this many
# seconds; older misses are recorded as skipped.
JOB_CATCHUP_WINDOW = seconds("JOB_CATCHUP_WINDOW", 3600)
# A running run refreshes its heartbeat this often; one silent for JOB_LOST_AFTER is "worker lost".
JOB_HEARTBEAT_INTERVAL = seconds("JOB_HEARTBEAT_INTERVAL", 30)
JOB_LOST_AFTER = seconds("JOB_LOST_AFTER", 4 * JOB_HEARTBEAT_INTERVAL)
# Shorter, and a run whose heartbeat is merely due would be failed as "worker lost" while it runs.
if JOB_LOST_AFTER < 2 * JOB_HEARTBEAT_INTERVAL:
    raise SettingError(
        f"JOB_LOST_AFTER must be at least twice JOB_HEARTBEAT_INTERVAL ({JOB_HEARTBEAT_INTERVAL:g} s), "
        f"got {JOB_LOST_AFTER:g}"
    )
# Results bigger than this (as JSON) are stored truncated, so one chatty step cannot bloat the table.
JOB_RESULT_MAX_BYTES = whole_number("JOB_RESULT_MAX_BYTES", 64 * 1024)
# A job whose last N scheduled runs all failed is paused as an operator would pause it; 0: never.
JOB_AUTO_PAUSE_AFTER = whole_number("JOB_AUTO_PAUSE_AFTER", 0, minimum=0, maximum=10000)
# History older than this many days is pruned daily (each job keeps its latest 20 runs and its last
# failure); 0 keeps it for ever.
JOB_RUN_RETENTION_DAYS = whole_number("JOB_RUN_RETENTION_DAYS", 90, minimum=0, maximum=36600)
SYNC_RUN_RETENTION_DAYS = whole_number("SYNC_RUN_RETENTION_DAYS", 30, minimum=0, maximum=36600)

# --- Alerts -----------------------------------------------------------------------------------
# Told when a job starts failing, recovers, is auto-paused or turns invalid, and when the Alloy sync
# keeps failing; each channel optional.
JOB_ALERT_EMAILS = email_addresses("JOB_ALERT_EMAILS", [])
# Slack's and Teams' incoming-webhook URLs hold their token: a Secret, also from *_FILE.
_JOB_ALERT_WEBHOOK_URL = read_secret("JOB_ALERT_WEBHOOK_URL")
JOB_ALERT_WEBHOOK_URL = (
    Secret(
        web_url(
            "JOB_ALERT_WEBHOOK_URL",
            _JOB_ALERT_WEBHOOK_URL,
            example="https://hooks.slack.com/services/T000/B000/XXXX",
            secret=True,
        )
    )
    if _JOB_ALERT_WEBHOOK_URL
    else None
)
# How mail is sent, in django-environ's form; the console by default (alerts appear in the log).
# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-email-url
_EMAIL = email_config("EMAIL_URL", read_secret("EMAIL_URL") or "consolemail://")
EMAIL_BACKEND = _EMAIL["EMAIL_BACKEND"]
EMAIL_HOST = _EMAIL.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _EMAIL.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _EMAIL.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _EMAIL.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _EMAIL.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _EMAIL.get("EMAIL_USE_SSL", False)
EMAIL_FILE_PATH = _EMAIL.get("EMAIL_FILE_PATH") or str(VAR_DIR / "mail")
# A mail server that does not answer must cost an alert's worker seconds, not minutes.
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = email_sender("DEFAULT_FROM_EMAIL", "alloysync@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Links in alerts point here (the admin's address as people reach it).
SITE_URL = web_url("SITE_URL", text("SITE_URL", "http://localhost:8000"), example="https://alloysync.example.org")

# --- Alloy ------------------------------------------------------------------------------------
# Plain http:// sends the key in clear text: only to this machine (the fake Alloy), unless allowed.
ALLOY_ALLOW_PLAIN_HTTP = flag("ALLOY_ALLOW_PLAIN_HTTP", False)
ALLOY_BASE_URL = alloy_base_url(
    "ALLOY_BASE_URL",
    "https://api.uk.alloyapp.io",
    allow_plain_http=ALLOY_ALLOW_PLAIN_HTTP,
    allow_name="ALLOY_ALLOW_PLAIN_HTTP",
)
# A Bearer token: printable ASCII without spaces or line breaks, or the process does not start.
# A Secret, so that no repr, log or settings dump shows it; the sync reads it with .reveal().
_ALLOY_API_KEY = read_secret("ALLOY_API_KEY", header_token=True)
ALLOY_API_KEY = Secret(_ALLOY_API_KEY) if _ALLOY_API_KEY else None
ALLOY_JOB_DESIGN = code("ALLOY_JOB_DESIGN", "", example="designs_scheduledJobs_65f0c0ffee0000000000abcd")
ALLOY_JOB_FLAG_ATTRIBUTE = code("ALLOY_JOB_FLAG_ATTRIBUTE", "", example="attributes_scheduledJobsIsJob")
ALLOY_CRON_ATTRIBUTE = code("ALLOY_CRON_ATTRIBUTE", "", example="attributes_scheduledJobsCron")
ALLOY_STEPS_ATTRIBUTE = code("ALLOY_STEPS_ATTRIBUTE", "", example="attributes_scheduledJobsSteps")
ALLOY_TIMEZONE_ATTRIBUTE = code("ALLOY_TIMEZONE_ATTRIBUTE", "", example="attributes_scheduledJobsTimezone")
ALLOY_TITLE_ATTRIBUTE = code("ALLOY_TITLE_ATTRIBUTE", "attributes_itemsTitle", example="attributes_itemsTitle")
ALLOY_COLLECTION = code("ALLOY_COLLECTION", "Live", example="Live")
# Alloy's largest page size is undocumented (docs/alloy-api.md); 1000 stops a typo, not a real need.
ALLOY_PAGE_SIZE = whole_number("ALLOY_PAGE_SIZE", 100, maximum=1000)
ALLOY_TIMEOUT = seconds("ALLOY_TIMEOUT", 30)
# Scheduled syncs read only what changed since the previous one, so they can be frequent.
ALLOY_SYNC_INTERVAL = seconds("ALLOY_SYNC_INTERVAL", 60)
ALLOY_MAX_REMOVAL_FRACTION = fraction("ALLOY_MAX_REMOVAL_FRACTION", 0.5)
# A complete read this often catches what edit times cannot show (hard deletes, a missed edit).
ALLOY_FULL_SYNC_INTERVAL = seconds("ALLOY_FULL_SYNC_INTERVAL", 86400)
# Alloy's clock and ours may disagree, and an edit may commit after the query: look back this far.
ALLOY_SYNC_LOOK_BACK = seconds("ALLOY_SYNC_LOOK_BACK", 300)
# Enables POST /alloy/webhook for Alloy workflows; a Secret like the API key (never shown).
_ALLOY_WEBHOOK_SECRET = read_secret("ALLOY_WEBHOOK_SECRET", header_token=True)
# Anyone who guesses it can make alloysync read Alloy on demand: refuse one short enough to guess.
MIN_WEBHOOK_SECRET_CHARS = 16
_MAKE_ONE = "make one with python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _refuse_guessable(name: str, value: str | None) -> None:
    """Stop start-up if the shared secret ``value`` of setting ``name`` is short or repetitive enough to guess."""
    if value is not None and (len(value) < MIN_WEBHOOK_SECRET_CHARS or len(set(value)) < 5):
        raise SettingError(
            f"{name} must be at least {MIN_WEBHOOK_SECRET_CHARS} characters with at least 5 different ones, "
            f"got {len(value)} characters, {len(set(value))} different (the value is not shown): {_MAKE_ONE}"
        )


_refuse_guessable("ALLOY_WEBHOOK_SECRET", _ALLOY_WEBHOOK_SECRET)
# Alloy workflows keep it in a Key Item readable by the customer's workflow authors: not the API key.
if _ALLOY_WEBHOOK_SECRET is not None and _ALLOY_WEBHOOK_SECRET == _ALLOY_API_KEY:
    raise SettingError(f"ALLOY_WEBHOOK_SECRET must not be the same as ALLOY_API_KEY: {_MAKE_ONE}")
ALLOY_WEBHOOK_SECRET = Secret(_ALLOY_WEBHOOK_SECRET) if _ALLOY_WEBHOOK_SECRET else None
# Where each job's state is written back onto its item; each optional (empty: not written).
ALLOY_STATUS_ATTRIBUTE = code("ALLOY_STATUS_ATTRIBUTE", "", example="attributes_scheduledJobsStatus")
ALLOY_MESSAGE_ATTRIBUTE = code("ALLOY_MESSAGE_ATTRIBUTE", "", example="attributes_scheduledJobsMessage")
ALLOY_LAST_RUN_ATTRIBUTE = code("ALLOY_LAST_RUN_ATTRIBUTE", "", example="attributes_scheduledJobsLastRun")
ALLOY_NEXT_RUN_ATTRIBUTE = code("ALLOY_NEXT_RUN_ATTRIBUTE", "", example="attributes_scheduledJobsNextRun")
ALLOY_RUN_NOW_ATTRIBUTE = code("ALLOY_RUN_NOW_ATTRIBUTE", "", example="attributes_scheduledJobsRunNow")
# A number attribute: the job's own time limit in seconds (empty on the item: JOB_TIME_LIMIT).
ALLOY_TIME_LIMIT_ATTRIBUTE = code("ALLOY_TIME_LIMIT_ATTRIBUTE", "", example="attributes_scheduledJobsTimeLimit")
# Failed syncs in a row before an alert (and one more when a sync succeeds again).
ALLOY_SYNC_ALERT_AFTER = whole_number("ALLOY_SYNC_ALERT_AFTER", 3, maximum=10000)
# alloysync writes these attributes: one that is also read (the cron, the flag...) would be
# overwritten with a state word, and two write-back settings on one attribute would fight.
_READ_CODES = {
    "ALLOY_JOB_FLAG_ATTRIBUTE": ALLOY_JOB_FLAG_ATTRIBUTE,
    "ALLOY_CRON_ATTRIBUTE": ALLOY_CRON_ATTRIBUTE,
    "ALLOY_STEPS_ATTRIBUTE": ALLOY_STEPS_ATTRIBUTE,
    "ALLOY_TIMEZONE_ATTRIBUTE": ALLOY_TIMEZONE_ATTRIBUTE,
    "ALLOY_TITLE_ATTRIBUTE": ALLOY_TITLE_ATTRIBUTE,
    "ALLOY_TIME_LIMIT_ATTRIBUTE": ALLOY_TIME_LIMIT_ATTRIBUTE,
}
_WRITTEN_CODES = {
    "ALLOY_STATUS_ATTRIBUTE": ALLOY_STATUS_ATTRIBUTE,
    "ALLOY_MESSAGE_ATTRIBUTE": ALLOY_MESSAGE_ATTRIBUTE,
    "ALLOY_LAST_RUN_ATTRIBUTE": ALLOY_LAST_RUN_ATTRIBUTE,
    "ALLOY_NEXT_RUN_ATTRIBUTE": ALLOY_NEXT_RUN_ATTRIBUTE,
    "ALLOY_RUN_NOW_ATTRIBUTE": ALLOY_RUN_NOW_ATTRIBUTE,
}
_claimed: dict[str, str] = {}
# Two read settings on one attribute (a time limit read from the cron attribute) is always a slip.
for _name, _code in _READ_CODES.items():
    if _code and _code in _claimed:
        raise SettingError(
            f"{_name} must be an attribute of its own, but {_claimed[_code]} names the same one ({_code!r})"
        )
    if _code:
        _claimed[_code] = _name
for _name, _code in _WRITTEN_CODES.items():
    if _code and _code in _claimed:
        raise SettingError(
            f"{_name} must be an attribute of its own, but {_claimed[_code]} names the same one ({_code!r}): "
            f"alloysync writes {_name} and would overwrite it"
        )
    if _code:
        _claimed[_code] = _name
# Item edits a minute alloysync may send; the rest of Alloy's per-endpoint limit is the customer's.
ALLOY_WRITE_RATE = whole_number("ALLOY_WRITE_RATE", 30, maximum=6000)
# How often beat asks a worker to write pending states back (a pass is cheap when nothing is pending).
WRITE_BACK_INTERVAL = seconds("WRITE_BACK_INTERVAL", 10)

# --- REST API (/api/v1/) and metrics (/metrics) --------------------------------------------------
# Requests a minute each API token may make; over it, 429 with Retry-After. Kept in the database, so
# the limit holds across web processes and hosts.
API_RATE_LIMIT = whole_number("API_RATE_LIMIT", 600, minimum=1, maximum=1_000_000)
# Enables GET /metrics for Prometheus (Authorization: Bearer <token>); unset, /metrics is 404. A
# Secret (never shown), also from METRICS_TOKEN_FILE, as Prometheus' bearer_token_file reads it.
_METRICS_TOKEN = read_secret("METRICS_TOKEN", header_token=True)
_refuse_guessable("METRICS_TOKEN", _METRICS_TOKEN)
METRICS_TOKEN = Secret(_METRICS_TOKEN) if _METRICS_TOKEN else None

# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    # API tokens for other systems; the admin's session for the browsable API and the docs.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "scheduler.api.auth.ApiTokenAuthentication",
        "scheduler.api.auth.SessionAuthentication",
    ],
    # Django's model permissions, reads included (view_*): a user sees what the admin would show them.
    "DEFAULT_PERMISSION_CLASSES": ["scheduler.api.permissions.ModelPermissions"],
    "DEFAULT_THROTTLE_CLASSES": ["scheduler.api.throttles.ApiRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "scheduler.api.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Non-ASCII written as \u escapes: a lone surrogate in any echoed text (a key named in an error)
    # then renders as valid JSON instead of failing the encoder with a 500.
    "UNICODE_JSON": False,
}
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "alloysync API",
    "DESCRIPTION": "Trigger and watch the jobs alloysync schedules from Alloy items, and its syncs.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status" and a "trigger": name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "JobRunStatusEnum": "scheduler.models.JobRun.Status",
        "StepRunStatusEnum": "scheduler.models.StepRun.Status",
        "JobRunTriggerEnum": "scheduler.models.JobRun.Trigger",
        "SyncRunStatusEnum": "alloysync.models.SyncRun.Status",
        "SyncRunTriggerEnum": "alloysync.models.SyncRun.Trigger",
    },
}

# --- Celery -----------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-url
# The default is kombu's filesystem transport: it needs no server and works across processes,
# which is all the embedded setup needs. Use redis:// or amqp:// in production.
CELERY_BROKER_URL = broker_url("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    try:
        for _folder in ("queue", "processed", "control"):
            (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    except OSError as _error:
        raise SettingError(
            f"VAR_DIR must be a folder this process can write (the filesystem broker keeps its messages "
            f"there), but {str(_broker_dir)!r} cannot be made: {_error.strerror}"
        ) from None
    # https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.filesystem.html
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis", "rediss")):
    # Web requests publish too (the webhook, "run now"): a broker host that does not answer must cost
    # them seconds, not the operating system's TCP timeout. kombu's Redis transport has none by default.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 5}
# The same bound for AMQP (its default is 4 s); stated so that both brokers say it.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-connection-timeout
CELERY_BROKER_CONNECTION_TIMEOUT = 5
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-connection-retry-on-startup
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# One queue for this service's tasks, named so that several deployments (or a test run) can share
# a broker without taking each other's messages.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-default-queue
CELERY_TASK_DEFAULT_QUEUE = code("CELERY_QUEUE", "alloysync", example="alloysync")
if not CELERY_TASK_DEFAULT_QUEUE:
    raise SettingError("CELERY_QUEUE must be a queue name such as alloysync, got ''")
# Runs and steps are recorded in our own tables; Celery's result store would be a second copy.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-ignore-result
CELERY_TASK_IGNORE_RESULT = True
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-serializer
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Acknowledge on receipt (the default, stated here because it is a guarantee): a message whose
# worker dies is not redelivered, so a job runs at most once per due time. The lost run is marked
# failed by scheduler.reap_lost_runs instead.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-late
CELERY_TASK_ACKS_LATE = False
# Jobs are long: one message per worker process at a time, so a free process takes the next job.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-prefetch-multiplier
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers and beat log through the LOGGING below (plain or JSON), not Celery's own format.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-hijack-root-logger
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#timezone
CELERY_TIMEZONE = "UTC"
# The project's scheduler: due times indexed in the database, a leader lease so that any number of
# beats may run and one sends (scheduler/beat/). PeriodicTask rows stay the schedule of record.
CELERY_BEAT_SCHEDULER = "scheduler.beat:JobScheduler"
# How long a dead leader's lease blocks the others; longer than the beat loop (5 s) and renewal.
BEAT_LEASE_TTL = seconds("BEAT_LEASE_TTL", 30)
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#beat-max-loop-interval
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
# Entries that belong to the service itself. DatabaseScheduler writes them to the database at
# start-up, so they exist after `migrate` plus a beat start, with no manual step.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#beat-schedule
CELERY_BEAT_SCHEDULE = {
    "scheduler.reap_lost_runs": {
        "task": "scheduler.reap_lost_runs",
        "schedule": JOB_HEARTBEAT_INTERVAL,
    },
    "alloysync.sync": {
        "task": "alloysync.sync",
        "schedule": ALLOY_SYNC_INTERVAL,
        # A sync queued behind a busy worker is pointless once the next one is due.
        "options": {"expires": ALLOY_SYNC_INTERVAL},
    },
    # Each job's state onto its item, paced under ALLOY_WRITE_RATE; a pass sends what is due and ends.
    "alloysync.write_back": {
        "task": "alloysync.write_back",
        "schedule": WRITE_BACK_INTERVAL,
        "options": {"expires": WRITE_BACK_INTERVAL},
    },
    # Items named by webhooks whose read was not done (a broker hiccup, a busy sync): read them now.
    "alloysync.read_items": {
        "task": "alloysync.read_items",
        "schedule": 30,
        "options": {"expires": 30},
    },
    # Alerts whose send never got to a worker (a broker outage) or kept failing: tried again.
    "scheduler.send_alerts": {
        "task": "scheduler.send_alerts",
        "schedule": 60,
        "options": {"expires": 60},
    },
    # Runs and sync records past JOB_RUN_RETENTION_DAYS / SYNC_RUN_RETENTION_DAYS, in small batches.
    "scheduler.prune_history": {
        "task": "scheduler.prune_history",
        "schedule": 24 * 3600,
        "options": {"expires": 3600},
    },
}

# --- Logs -------------------------------------------------------------------------------------
# One line per sync and per job run, with ids, outcome and duration. LOG_FORMAT=json writes one
# JSON object a line (the ids as fields) for log collectors.
LOG_LEVEL = choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
LOG_FORMAT = choice("LOG_FORMAT", "plain", ["plain", "json"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # httpx logs every request at INFO; the sync logs one line per sync instead.
    # Django's own console handler (DEBUG only) is dropped: its records reach the root's handler
    # anyway, and it printed each 4xx/5xx a second time, unformatted (breaking LOG_FORMAT=json).
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "django": {"handlers": [], "level": "INFO", "propagate": True},
    },
}
