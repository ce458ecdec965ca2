"""Reading the process environment into settings values, with errors that name the variable.

A setting that cannot be understood stops start-up with one ``ImproperlyConfigured`` message that
names the environment variable and what was wrong with it, instead of a traceback from deep inside
a database driver at the first query.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """The variable's value, or ``default`` when it is unset."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    """A yes/no variable; anything other than the usual words is a configuration error."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean: use one of 1/0, true/false, yes/no."
    )


def env_int(name: str, default: int) -> int:
    """A whole-number variable."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list variable."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [part.strip() for part in raw.split(",") if part.strip()]


def database_from_env(name: str, default_sqlite_path: Path) -> dict:
    """The ``DATABASES['default']`` entry from ``DATABASE_URL``, or a SQLite file by default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        default_sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(default_sqlite_path),
            # Several processes (web, worker, beat) share the file: wait for locks, do not fail.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    scheme = urlsplit(raw).scheme
    supported = {"postgres", "postgresql", "pgsql", "sqlite"}
    if scheme not in supported:
        raise ImproperlyConfigured(
            f"{name} is malformed: scheme {scheme or '(none)'!r} is not one of "
            f"{', '.join(sorted(supported))} (expected e.g. postgres://user@host:5432/dbname)."
        )
    try:
        config = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except Exception as error:  # dj-database-url raises several types; all mean the same here
        raise ImproperlyConfigured(f"{name} is malformed: {error}") from error
    if config["ENGINE"].endswith("sqlite3"):
        if not config.get("NAME") or config["NAME"] == ":memory:":
            raise ImproperlyConfigured(
                f"{name} is malformed: a SQLite URL needs a file path (sqlite:////abs/path.sqlite3);"
                " an in-memory database cannot be shared by the web and worker processes."
            )
        config["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
        config["CONN_MAX_AGE"] = 0
    elif not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} is malformed: it names no database (…/dbname).")
    return config


def filesystem_broker_options(folder: Path) -> dict:
    """Celery transport options for kombu's server-less ``filesystem://`` broker in ``folder``
    (shared by every process on the machine that uses the same folder)."""
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }
