"""Settings for the test suite: the same code as production, on SQLite and the filesystem broker
unless ``DATABASE_URL`` / ``REDIS_URL`` / ``CELERY_BROKER_URL`` point at real services."""

from lms_site.settings.base import *  # noqa: F403
from lms_site.settings.base import DATABASES, VAR_DIR

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; tests only
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory: integration tests start a real worker process that must see the rows.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_edu_dl.sqlite3")}
