"""System checks for the ``EDU_DL`` settings dict (``manage.py check``; also run by workers).

Ids: E001 not a dict, E002 unknown option, E003 DEVICE, E004 ARTIFACT_STORAGE,
E005 a number out of range (counts, thread counts, fractions, thresholds, the regex time limit),
E006 time limits in the wrong order, E007 KT_MODEL unknown, E008 GRADING_ENCODER not a text,
E009 RECOMMENDER_BAND not a band (two numbers 0 <= low < high <= 1),
E010 WEBHOOK_ALLOW_PRIVATE_HOSTS or GRADING_ENCODER_ESSAYS not a boolean, E011 ENCRYPTION_KEYS
not a list of Fernet keys.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register

from edu_dl.conf import DEFAULTS, KNOWN_DEVICES

POSITIVE_NUMBERS = (
    "TRAINING_HEARTBEAT_TIMEOUT_S",
    "TRAINING_REQUEUE_AFTER_S",
    "TRAINING_SOFT_TIME_LIMIT_S",
    "TRAINING_HARD_TIME_LIMIT_S",
    "KT_EPOCHS",
    "KT_MIN_INTERACTIONS",
    "KT_RETRAIN_MIN_NEW_INTERACTIONS",
    "MASTERY_ATTENTION_MIN_EVIDENCE",
    "GRADING_MAX_ANSWER_CHARS",
    "GRADING_RETRAIN_AFTER_TEACHER_SCORES",
    "GRADING_ENCODER_TUNE_EPOCHS",
    "GRADING_ENCODER_TUNE_MIN_ANSWERS",
    "RECOMMENDER_MIN_FEEDBACK",
    "RECOMMENDER_COUNT",
    "RECOMMENDER_PER_SKILL",
)
# Fractions: above 0 and at most 1.
FRACTIONS = (
    "MASTERY_CORRECT_FRACTION",
    "MASTERY_ATTENTION_BELOW",
    "MASTERY_ATTENTION_DROP",
    "RECOMMENDER_TARGET_MASTERY",
)
# Thresholds: from 0 (release every grade) to 1 (only perfect ones), both included.
THRESHOLDS = (
    "GRADING_RELEASE_MIN_QWK",
    "GRADING_RELEASE_MIN_CONFIDENCE",
)
# The most GRADING_REGEX_TIMEOUT_S may be, in seconds: a regular expression is matched while a
# student's request waits, and the regex package takes a limit far above this (from some 1e13
# seconds) as already passed, which would send every answer to the review queue.
REGEX_TIMEOUT_MAX_S = 60
# The knowledge-tracing models registered in edu_dl.ml (named here so checks need no torch;
# tests/ml/kt/test_models.py holds the two lists equal).
KT_MODELS = ("akt", "dkt", "dkt-rasch")


def _is_number(value) -> bool:
    """An int or a float, and not a bool (which Python counts as an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@register(Tags.compatibility)
def check_edu_dl_settings(app_configs=None, **kwargs) -> list[Error]:
    options = getattr(settings, "EDU_DL", {})
    if not isinstance(options, dict):
        return [
            Error(
                f"settings.EDU_DL must be a dict, not {type(options).__name__}.",
                id="edu_dl.E001",
            )
        ]
    errors: list[Error] = []
    for name in sorted(set(options) - set(DEFAULTS)):
        errors.append(
            Error(
                f"settings.EDU_DL[{name!r}] is not an edu_dl option.",
                hint=f"Known options: {', '.join(sorted(DEFAULTS))}.",
                id="edu_dl.E002",
            )
        )
    merged = {**DEFAULTS, **options}
    if merged["DEVICE"] not in KNOWN_DEVICES:
        errors.append(
            Error(
                f"settings.EDU_DL['DEVICE'] (EDU_DL_DEVICE) is {merged['DEVICE']!r}; "
                f"it must be one of {', '.join(KNOWN_DEVICES)}.",
                id="edu_dl.E003",
            )
        )
    storages = getattr(settings, "STORAGES", {})
    if merged["ARTIFACT_STORAGE"] not in storages:
        errors.append(
            Error(
                f"settings.EDU_DL['ARTIFACT_STORAGE'] is {merged['ARTIFACT_STORAGE']!r}, "
                "which is not an alias in settings.STORAGES.",
                id="edu_dl.E004",
            )
        )
    for name in POSITIVE_NUMBERS:
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            errors.append(
                Error(
                    f"settings.EDU_DL[{name!r}] must be a positive whole number, not {value!r}.",
                    id="edu_dl.E005",
                )
            )
    for name in (
        "TORCH_THREADS",
        "MASTERY_SUMMARY_MAX_LAG_S",
        "GRADING_COLD_START_UNTIL",
        "GRADING_ENCODER_TUNE_LAYERS",
    ):
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            errors.append(
                Error(
                    f"settings.EDU_DL[{name!r}] must be 0 or a positive whole number, "
                    f"not {value!r}.",
                    id="edu_dl.E005",
                )
            )
    regex_timeout = merged["GRADING_REGEX_TIMEOUT_S"]
    if not _is_number(regex_timeout) or not 0 < regex_timeout <= REGEX_TIMEOUT_MAX_S:
        errors.append(
            Error(
                "settings.EDU_DL['GRADING_REGEX_TIMEOUT_S'] must be a number of seconds above 0 "
                f"and at most {REGEX_TIMEOUT_MAX_S} (e.g. 0.1), not {regex_timeout!r}.",
                hint="It bounds how long one answer is checked against a regular-expression "
                "answer key while the student waits; past it the answer goes to the review queue.",
                id="edu_dl.E005",
            )
        )
    audit = merged["GRADING_AUDIT_SHARE"]
    if not _is_number(audit) or not 0 <= audit < 1:
        errors.append(
            Error(
                "settings.EDU_DL['GRADING_AUDIT_SHARE'] must be a number from 0 to below 1 "
                f"(e.g. 0.1), not {audit!r}.",
                hint="It is the share of each item's answers that always go to the teacher, "
                "so that the item's grader is measured on a fair sample; 0 turns the check off.",
                id="edu_dl.E005",
            )
        )
    growth = merged["GRADING_ENCODER_RETUNE_GROWTH"]
    if not _is_number(growth) or not 0 <= growth <= 100:
        errors.append(
            Error(
                "settings.EDU_DL['GRADING_ENCODER_RETUNE_GROWTH'] must be a number from 0 to "
                f"100 (e.g. 0.5), not {growth!r}.",
                hint="A retrain keeps an item's tuned encoder layers until the teacher has "
                "scored this share more answers than they learnt from; 0 tunes every time.",
                id="edu_dl.E005",
            )
        )
    share = merged["KT_VALIDATION_SHARE"]
    if not _is_number(share) or not 0 < share < 1:
        errors.append(
            Error(
                f"settings.EDU_DL['KT_VALIDATION_SHARE'] must be a number between 0 and 1, "
                f"not {share!r}.",
                id="edu_dl.E005",
            )
        )
    for name in FRACTIONS:
        value = merged[name]
        if not _is_number(value) or not 0 < value <= 1:
            errors.append(
                Error(
                    f"settings.EDU_DL[{name!r}] must be a number above 0 and at most 1, "
                    f"not {value!r}.",
                    id="edu_dl.E005",
                )
            )
    for name in THRESHOLDS:
        value = merged[name]
        if not _is_number(value) or not 0 <= value <= 1:
            errors.append(
                Error(
                    f"settings.EDU_DL[{name!r}] must be a number from 0 to 1, not {value!r}.",
                    id="edu_dl.E005",
                )
            )
    band = merged["RECOMMENDER_BAND"]
    if not (
        isinstance(band, list | tuple)
        and len(band) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in band)
        and 0 <= band[0] < band[1] <= 1
    ):
        errors.append(
            Error(
                "settings.EDU_DL['RECOMMENDER_BAND'] must be two numbers low, high with "
                f"0 <= low < high <= 1, not {band!r}.",
                id="edu_dl.E009",
            )
        )
    soft, hard = merged["TRAINING_SOFT_TIME_LIMIT_S"], merged["TRAINING_HARD_TIME_LIMIT_S"]
    if isinstance(soft, int) and isinstance(hard, int) and soft >= hard:
        errors.append(
            Error(
                "settings.EDU_DL['TRAINING_SOFT_TIME_LIMIT_S'] must be below "
                "TRAINING_HARD_TIME_LIMIT_S, so a run can record its failure before it is killed.",
                id="edu_dl.E006",
            )
        )
    if merged["KT_MODEL"] not in (*KT_MODELS, "auto"):
        errors.append(
            Error(
                f"settings.EDU_DL['KT_MODEL'] is {merged['KT_MODEL']!r}; "
                f"known models: auto, {', '.join(KT_MODELS)}.",
                id="edu_dl.E007",
            )
        )
    if not isinstance(merged["GRADING_ENCODER"], str):
        errors.append(
            Error(
                "settings.EDU_DL['GRADING_ENCODER'] must be a text (a folder or an installed "
                'model\'s name, "auto" for the packaged one where it is installed, or "" for '
                f"none), not {merged['GRADING_ENCODER']!r}.",
                id="edu_dl.E008",
            )
        )
    allow_private = merged["WEBHOOK_ALLOW_PRIVATE_HOSTS"]
    if not isinstance(allow_private, bool):
        # Not truthiness: a "false" read from a file or the environment is a true string, and
        # would open the school's network to every teacher's webhooks.
        errors.append(
            Error(
                "settings.EDU_DL['WEBHOOK_ALLOW_PRIVATE_HOSTS'] must be True or False, "
                f"not {allow_private!r}.",
                hint="True lets webhooks reach loopback, private and carrier-grade NAT "
                "addresses, for receivers inside the site's own network.",
                id="edu_dl.E010",
            )
        )
    if not isinstance(merged["GRADING_ENCODER_ESSAYS"], bool):
        errors.append(
            Error(
                "settings.EDU_DL['GRADING_ENCODER_ESSAYS'] must be True or False, "
                f"not {merged['GRADING_ENCODER_ESSAYS']!r}.",
                id="edu_dl.E010",
            )
        )
    problem = _encryption_keys_problem(merged["ENCRYPTION_KEYS"])
    if problem:
        errors.append(
            Error(
                f"settings.EDU_DL['ENCRYPTION_KEYS'] {problem}.",
                hint="A list of keys made by cryptography's Fernet.generate_key() (44 url-safe "
                "base64 characters), the one that encrypts first; [] derives one from SECRET_KEY.",
                id="edu_dl.E011",
            )
        )
    return errors


def _encryption_keys_problem(keys: object) -> str | None:
    """What is wrong with the ENCRYPTION_KEYS option (never the key itself), or None."""
    if not isinstance(keys, list | tuple):
        return f"must be a list of keys, not a {type(keys).__name__}"
    from cryptography.fernet import Fernet

    for position, key in enumerate(keys):
        try:
            Fernet(key)
        except (TypeError, ValueError):
            return f"holds something that is not a Fernet key at position {position}"
    if len(set(keys)) != len(keys):
        return "holds the same key twice"
    return None
