"""Settings from the environment and the EDU_DL system checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from edu_dl.checks import check_edu_dl_settings
from edu_dl.conf import edu_settings
from lms_site.settings.env import database_from_env, env_bool, env_int

REPOSITORY = Path(__file__).resolve().parents[1]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "lms_site.settings.local", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPOSITORY,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://root@localhost/edu", "scheme 'mysql' is not one of"),
        ("postgres://user@host:port/db", "DATABASE_URL is malformed"),
        ("postgres://user@localhost:5432", "names no database"),
        ("sqlite://:memory:", "needs a file path"),
    ],
)
def test_a_malformed_database_url_stops_start_up_with_one_line_naming_it(url, reason):
    result = run_manage("check", DATABASE_URL=url)

    assert result.returncode == 2
    assert result.stderr.startswith("edu_dl cannot start: DATABASE_URL is malformed")
    assert reason in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_bad_edu_dl_option_stops_the_check_with_its_id():
    result = run_manage("check", EDU_DL_DEVICE="tpu")

    assert result.returncode == 1
    assert "edu_dl.E003" in result.stderr
    assert "EDU_DL_DEVICE" in result.stderr


def test_database_url_defaults_to_a_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)

    config = database_from_env("DATABASE_URL", tmp_path / "var" / "db.sqlite3")

    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "var" / "db.sqlite3")
    assert (tmp_path / "var").is_dir()


def test_a_postgres_url_is_parsed(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://edu:secret@db.internal:5433/lms")

    config = database_from_env("DATABASE_URL", tmp_path / "unused.sqlite3")

    assert (config["ENGINE"], config["NAME"], config["HOST"], config["PORT"]) == (
        "django.db.backends.postgresql",
        "lms",
        "db.internal",
        5433,
    )


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("yes", True), ("off", False)])
def test_booleans_accept_the_usual_words(monkeypatch, raw, value):
    monkeypatch.setenv("DJANGO_DEBUG", raw)

    assert env_bool("DJANGO_DEBUG") is value


def test_a_bad_boolean_or_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("DJANGO_DEBUG", "maybe")
    monkeypatch.setenv("EDU_DL_TORCH_THREADS", "four")

    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG='maybe' is not a boolean"):
        env_bool("DJANGO_DEBUG")
    with pytest.raises(ImproperlyConfigured, match="EDU_DL_TORCH_THREADS='four'"):
        env_int("EDU_DL_TORCH_THREADS", 0)


def test_the_default_settings_pass_the_checks():
    assert check_edu_dl_settings() == []


FERNET_KEY = "x2Wq1gq0n0y6kq3VQ2b3wF0mXo8H6Jp4bq2l9Yt3kQ0="


def test_fernet_keys_are_accepted_and_the_error_never_shows_a_key(settings):
    settings.EDU_DL = {"ENCRYPTION_KEYS": [FERNET_KEY]}
    assert check_edu_dl_settings() == []

    settings.EDU_DL = {"ENCRYPTION_KEYS": [FERNET_KEY, "secret-but-malformed"]}
    (error,) = check_edu_dl_settings()

    assert error.msg == (
        "settings.EDU_DL['ENCRYPTION_KEYS'] holds something that is not a Fernet key at position 1."
    )
    assert "secret-but-malformed" not in error.msg + error.hint


@pytest.mark.parametrize(
    ("options", "error_id"),
    [
        ("not a dict", "edu_dl.E001"),
        ({"DEVIC": "cpu"}, "edu_dl.E002"),
        ({"DEVICE": "gpu"}, "edu_dl.E003"),
        ({"ARTIFACT_STORAGE": "nowhere"}, "edu_dl.E004"),
        ({"KT_EPOCHS": 0}, "edu_dl.E005"),
        ({"GRADING_ENCODER_TUNE_LAYERS": -1}, "edu_dl.E005"),
        ({"GRADING_ENCODER_TUNE_EPOCHS": 0}, "edu_dl.E005"),
        ({"GRADING_ENCODER_RETUNE_GROWTH": -0.5}, "edu_dl.E005"),
        ({"GRADING_ENCODER_RETUNE_GROWTH": "0.5"}, "edu_dl.E005"),
        ({"TORCH_THREADS": -1}, "edu_dl.E005"),
        ({"KT_VALIDATION_SHARE": 1.5}, "edu_dl.E005"),
        ({"GRADING_AUDIT_SHARE": 1}, "edu_dl.E005"),
        ({"GRADING_AUDIT_SHARE": -0.1}, "edu_dl.E005"),
        ({"GRADING_AUDIT_SHARE": "0.1"}, "edu_dl.E005"),
        ({"TRAINING_SOFT_TIME_LIMIT_S": 100, "TRAINING_HARD_TIME_LIMIT_S": 50}, "edu_dl.E006"),
        ({"KT_MODEL": "bkt"}, "edu_dl.E007"),
        ({"KT_RETRAIN_MIN_NEW_INTERACTIONS": 0}, "edu_dl.E005"),
        ({"MASTERY_ATTENTION_MIN_EVIDENCE": 2.5}, "edu_dl.E005"),
        ({"MASTERY_CORRECT_FRACTION": 0}, "edu_dl.E005"),
        ({"MASTERY_CORRECT_FRACTION": 1.2}, "edu_dl.E005"),
        ({"MASTERY_ATTENTION_BELOW": "0.6"}, "edu_dl.E005"),
        ({"MASTERY_ATTENTION_DROP": True}, "edu_dl.E005"),
        ({"MASTERY_SUMMARY_MAX_LAG_S": -1}, "edu_dl.E005"),
        ({"MASTERY_SUMMARY_MAX_LAG_S": 1.5}, "edu_dl.E005"),
        ({"GRADING_MAX_ANSWER_CHARS": 0}, "edu_dl.E005"),
        ({"GRADING_MAX_ANSWER_CHARS": 2000.0}, "edu_dl.E005"),
        ({"GRADING_RETRAIN_AFTER_TEACHER_SCORES": -5}, "edu_dl.E005"),
        ({"GRADING_COLD_START_UNTIL": -1}, "edu_dl.E005"),
        ({"GRADING_COLD_START_UNTIL": 7.5}, "edu_dl.E005"),
        ({"GRADING_REGEX_TIMEOUT_S": 0}, "edu_dl.E005"),
        ({"GRADING_REGEX_TIMEOUT_S": -0.1}, "edu_dl.E005"),
        ({"GRADING_REGEX_TIMEOUT_S": "0.1"}, "edu_dl.E005"),
        ({"GRADING_REGEX_TIMEOUT_S": None}, "edu_dl.E005"),
        ({"GRADING_REGEX_TIMEOUT_S": True}, "edu_dl.E005"),
        ({"GRADING_REGEX_TIMEOUT_S": float("nan")}, "edu_dl.E005"),
        ({"GRADING_REGEX_TIMEOUT_S": float("inf")}, "edu_dl.E005"),
        ({"GRADING_REGEX_TIMEOUT_S": 61}, "edu_dl.E005"),
        ({"GRADING_RELEASE_MIN_QWK": 1.01}, "edu_dl.E005"),
        ({"GRADING_RELEASE_MIN_QWK": -0.1}, "edu_dl.E005"),
        ({"GRADING_RELEASE_MIN_CONFIDENCE": "0.9"}, "edu_dl.E005"),
        ({"GRADING_RELEASE_MIN_CONFIDENCE": None}, "edu_dl.E005"),
        ({"GRADING_ENCODER": None}, "edu_dl.E008"),
        ({"RECOMMENDER_MIN_FEEDBACK": 0}, "edu_dl.E005"),
        ({"RECOMMENDER_TARGET_MASTERY": 0}, "edu_dl.E005"),
        ({"RECOMMENDER_COUNT": 0}, "edu_dl.E005"),
        ({"RECOMMENDER_PER_SKILL": 1.5}, "edu_dl.E005"),
        ({"RECOMMENDER_BAND": (0.85, 0.6)}, "edu_dl.E009"),
        ({"RECOMMENDER_BAND": (0.6,)}, "edu_dl.E009"),
        ({"RECOMMENDER_BAND": "0.6-0.85"}, "edu_dl.E009"),
        ({"WEBHOOK_ALLOW_PRIVATE_HOSTS": "false"}, "edu_dl.E010"),
        ({"WEBHOOK_ALLOW_PRIVATE_HOSTS": 1}, "edu_dl.E010"),
        ({"WEBHOOK_ALLOW_PRIVATE_HOSTS": None}, "edu_dl.E010"),
        ({"GRADING_ENCODER_ESSAYS": "no"}, "edu_dl.E010"),
        ({"ENCRYPTION_KEYS": "a-key"}, "edu_dl.E011"),
        ({"ENCRYPTION_KEYS": ["not-a-fernet-key"]}, "edu_dl.E011"),
        ({"ENCRYPTION_KEYS": [None]}, "edu_dl.E011"),
        ({"ENCRYPTION_KEYS": [FERNET_KEY, FERNET_KEY]}, "edu_dl.E011"),
    ],
)
def test_each_bad_option_is_reported_by_its_check(settings, options, error_id):
    settings.EDU_DL = options

    errors = check_edu_dl_settings()

    assert [e.id for e in errors] == [error_id]


@pytest.mark.parametrize(
    "options",
    [
        {"GRADING_RELEASE_MIN_QWK": 0, "GRADING_RELEASE_MIN_CONFIDENCE": 1},
        {"GRADING_RELEASE_MIN_QWK": 1.0, "GRADING_RELEASE_MIN_CONFIDENCE": 0.0},
        {"GRADING_ENCODER": "/srv/models/all-MiniLM-L6-v2"},
        {"GRADING_ENCODER": "auto", "GRADING_ENCODER_ESSAYS": True},
        {"GRADING_MAX_ANSWER_CHARS": 1, "GRADING_RETRAIN_AFTER_TEACHER_SCORES": 1},
        {"GRADING_REGEX_TIMEOUT_S": 0.001},
        {"GRADING_REGEX_TIMEOUT_S": 2},
        {"GRADING_REGEX_TIMEOUT_S": 60},
    ],
)
def test_grading_options_at_their_limits_pass_the_checks(settings, options):
    settings.EDU_DL = options

    assert check_edu_dl_settings() == []


def test_allowing_private_webhook_hosts_takes_a_boolean_and_says_so(settings):
    settings.EDU_DL = {"WEBHOOK_ALLOW_PRIVATE_HOSTS": "false"}

    (error,) = check_edu_dl_settings()

    assert error.msg == (
        "settings.EDU_DL['WEBHOOK_ALLOW_PRIVATE_HOSTS'] must be True or False, not 'false'."
    )
    settings.EDU_DL = {"WEBHOOK_ALLOW_PRIVATE_HOSTS": True}
    assert check_edu_dl_settings() == []


@pytest.mark.parametrize(
    ("environment", "allowed"),
    [
        ({}, "True"),
        ({"DJANGO_DEBUG": "false"}, "True"),
        ({"EDU_DL_WEBHOOK_ALLOW_PRIVATE_HOSTS": "false"}, "False"),
    ],
)
def test_the_one_machine_settings_let_webhooks_reach_it_unless_told_not_to(
    environment, allowed, monkeypatch
):
    """make demo's settings allow private webhook hosts, so a receiver in development works;
    the suite's refuse them (a test with a local receiver allows them with the settings
    fixture)."""
    monkeypatch.delenv("EDU_DL_WEBHOOK_ALLOW_PRIVATE_HOSTS", raising=False)
    show = "from edu_dl.conf import edu_settings; print(edu_settings.WEBHOOK_ALLOW_PRIVATE_HOSTS)"

    result = run_manage("shell", "-c", show, **environment)

    # The last line: Django's shell first says what it imported.
    assert (result.returncode, result.stdout.strip().splitlines()[-1]) == (0, allowed)
    assert edu_settings.WEBHOOK_ALLOW_PRIVATE_HOSTS is False


def test_a_regex_time_limit_that_is_not_a_positive_number_is_named_with_its_value(settings):
    settings.EDU_DL = {"GRADING_REGEX_TIMEOUT_S": 0}

    [error] = check_edu_dl_settings()

    assert error.id == "edu_dl.E005"
    assert error.msg == (
        "settings.EDU_DL['GRADING_REGEX_TIMEOUT_S'] must be a number of seconds above 0 and at "
        "most 60 (e.g. 0.1), not 0."
    )


def test_the_regex_time_limit_defaults_to_a_tenth_of_a_second(settings):
    settings.EDU_DL = {}

    assert edu_settings.GRADING_REGEX_TIMEOUT_S == 0.1


def test_options_are_read_when_used_not_at_import(settings):
    settings.EDU_DL = {**settings.EDU_DL, "KT_EPOCHS": 7}

    assert edu_settings.KT_EPOCHS == 7
    assert edu_settings.TRAINING_HEARTBEAT_TIMEOUT_S == 600


def test_an_unknown_option_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no option 'NOPE'"):
        edu_settings.NOPE  # noqa: B018
