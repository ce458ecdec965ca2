"""Settings for the test suite: the same code as production, on SQLite and the filesystem broker
unless ``DATABASE_URL`` / ``REDIS_URL`` / ``CELERY_BROKER_URL`` point at real services."""

import os
import tempfile
from pathlib import Path

from lms_site.settings.base import *  # noqa: F403
from lms_site.settings.base import DATABASES
from lms_site.settings.env import filesystem_broker_options

DEBUG = False
# Whatever the environment says: the suite proves webhooks refuse private addresses. A test
# that delivers to its own server on 127.0.0.1 allows them with the settings fixture.
# The random check of model grades (GRADING_AUDIT_SHARE) is off: which answers it holds depends
# on database ids, so a test expecting a release would pass or fail by the id it got. The tests
# of the check turn it on with the settings fixture.
# No sentence encoder, whether or not the `encoder` extra is installed: the suite runs the same
# everywhere, and the tests of the encoder paths set one (a tiny one, or the real one where the
# extra is installed).
EDU_DL = {
    **EDU_DL,  # noqa: F405
    "WEBHOOK_ALLOW_PRIVATE_HOSTS": False,
    "GRADING_AUDIT_SHARE": 0.0,
    "GRADING_ENCODER": "",
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; tests only
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (WhiteNoise warns when it is absent)
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory: integration tests start a real worker process that must see the rows.
    # One file per test process, so two runs side by side never share (or delete) a database.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"edu_dl_test_{os.getpid()}.sqlite3")
    }

if CELERY_BROKER_URL.startswith("filesystem://"):  # noqa: F405
    # Its own folder, so a demo worker (or another test run) never takes the suite's messages;
    # the integration tests hand the folder to their worker process in EDU_DL_TEST_BROKER_DIR.
    _test_broker = Path(
        os.environ.get("EDU_DL_TEST_BROKER_DIR")
        or Path(tempfile.gettempdir()) / f"edu_dl_test_broker_{os.getpid()}"
    )
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(_test_broker)
