"""The app's options: one ``EDU_DL`` dict in the Django settings, read lazily.

Like DRF's ``api_settings``: ``from edu_dl.conf import edu_settings; edu_settings.DEVICE``.
Nothing is read at import time, so tests can override ``EDU_DL`` with ``override_settings`` and
see the change at once. Validation lives in :mod:`edu_dl.checks` (ids ``edu_dl.E001`` ...).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # Where model artifacts are written: the alias of an entry in settings.STORAGES.
    "ARTIFACT_STORAGE": "edu_dl_artifacts",
    # Torch device for training and inference in workers: "cpu", "cuda" or "auto".
    "DEVICE": "cpu",
    # Torch intra-op threads in a worker (0 = torch's default, one per core).
    "TORCH_THREADS": 0,
    # A running TrainingRun whose heartbeat is older than this is failed by the sweeper.
    "TRAINING_HEARTBEAT_TIMEOUT_S": 600,
    # A queued TrainingRun not started after this long is enqueued again by the sweeper.
    "TRAINING_REQUEUE_AFTER_S": 300,
    # Celery soft / hard time limits of one training task.
    "TRAINING_SOFT_TIME_LIMIT_S": 3600,
    "TRAINING_HARD_TIME_LIMIT_S": 3900,
    # Knowledge-tracing training defaults (a course can override per request).
    # "auto": akt where answers name their items, dkt-rasch where they name skills only.
    "KT_MODEL": "auto",
    "KT_EPOCHS": 30,
    "KT_VALIDATION_SHARE": 0.2,
    "KT_MIN_INTERACTIONS": 50,
    # Beat retrains a course's KT model once this many interactions arrived since its last run.
    "KT_RETRAIN_MIN_NEW_INTERACTIONS": 500,
    # A graded response counts as a correct answer for knowledge tracing when its score reaches
    # this fraction of the item's range (min_score to max_score).
    "MASTERY_CORRECT_FRACTION": 0.5,
    # A skill needs attention when its mastery is below MASTERY_ATTENTION_BELOW with at least
    # MASTERY_ATTENTION_MIN_EVIDENCE answers behind it, or when it dropped by at least
    # MASTERY_ATTENTION_DROP over the progress window.
    "MASTERY_ATTENTION_BELOW": 0.6,
    "MASTERY_ATTENTION_MIN_EVIDENCE": 3,
    "MASTERY_ATTENTION_DROP": 0.1,
    # The class overview reads each student's overall mastery and skills needing attention
    # from a summary that workers refresh a few seconds after mastery changes; it computes the
    # summary itself only when the summary misses estimates and is older than this, in seconds
    # (the workers are behind). 0: whenever it misses any.
    "MASTERY_SUMMARY_MAX_LAG_S": 120,
    # The longest answer a student may submit to one item, in characters (an essay of some
    # 3000 words); a longer one is refused before anything is written.
    "GRADING_MAX_ANSWER_CHARS": 20000,
    # The longest a teacher's regular-expression answer key may take to check one answer, in
    # seconds (above 0, at most 60). The web process grades these while the student waits, and a
    # pattern such as (a|aa)+b backtracks for ever on a long answer: past this the answer goes to
    # the review queue instead.
    "GRADING_REGEX_TIMEOUT_S": 0.1,
    # A model's grade is released to the student without a teacher only when the item's grader's
    # grades at this grade's confidence and above reached this quadratic weighted kappa against
    # teacher scores on held-out answers (the lower end of a 95 % interval: its release curve) ...
    "GRADING_RELEASE_MIN_QWK": 0.80,
    # ... and the grader's confidence in this one grade is at least this (0.5: never a grade it
    # thinks more likely wrong than right). Otherwise the response goes to the review queue. An
    # item can set its own (Item.release_min_qwk / Item.release_min_confidence).
    "GRADING_RELEASE_MIN_CONFIDENCE": 0.5,
    # The random check: this share of each item's answers (drawn by a hash of the response id,
    # so whatever they say) always goes to the teacher, first in the review queue, and the item's
    # grader is measured on them, a fair sample, rather than on the answers the queue chose for
    # being hard. From 0 (no check: measured on all teacher scores) to below 1.
    "GRADING_AUDIT_SHARE": 0.1,
    # An item's grader is retrained once teachers scored this many of its responses (accepted
    # or overridden) since it was last trained.
    "GRADING_RETRAIN_AFTER_TEACHER_SCORES": 50,
    # An item with a model answer is scored by the cold-start grader (learnt on the answers of
    # many other items, and reading the item's own teacher-scored answers) until its own grader
    # was trained on at least this many teacher scores: below that an item's own grader agrees
    # less with its teacher (on ASAP-SAS the two cross between 100 and 150 scored answers;
    # benchmarks/bench_cold_start_handoff.py). 0: the item's grader as soon as it exists.
    "GRADING_COLD_START_UNTIL": 100,
    # The sentence-transformers encoder the short-answer grader embeds answers with: a folder
    # path or the name of an installed model package; "" = none (the grader works without);
    # "auto" = the packaged all-MiniLM-L6-v2 where the `encoder` extra is installed, else none
    # (on ASAP-SAS it lifts mean QWK from 0.723 to 0.753).
    "GRADING_ENCODER": "auto",
    # Essays are graded without the encoder unless this is on: it reads at most the first 128
    # to 256 word pieces of an answer (about 100 to 200 words), so it would see the opening of
    # an essay only; its effect on essays is not measured.
    "GRADING_ENCODER_ESSAYS": False,
    # With an encoder: tune its top this many transformer layers on each item that has at
    # least GRADING_ENCODER_TUNE_MIN_ANSWERS teacher-scored answers, and blend the tuned model
    # with the item's kernel grader (edu_dl.ml.grading.tuned; minutes per item on a CPU, about
    # 14 MB more per item's grader on disk).
    # 0: no tuning (the encoder's sentence vectors are one more view of the kernel grader).
    "GRADING_ENCODER_TUNE_LAYERS": 2,
    # Passes over the item's answers when tuning.
    "GRADING_ENCODER_TUNE_EPOCHS": 6,
    # Items with fewer teacher-scored answers keep the kernel grader alone: below a few hundred
    # the answers held out of tuning are too few to set the blend's level boundaries on.
    "GRADING_ENCODER_TUNE_MIN_ANSWERS": 400,
    # A retrain keeps the item's tuned layers (and refits only how they blend with the kernel
    # grader, in seconds) until the teacher has scored this share more answers than the layers
    # learnt from; then it tunes them again (minutes). 0: tune at every retrain.
    "GRADING_ENCODER_RETUNE_GROWTH": 0.5,
    # The recommender's model of what helped similar students trains once a course holds this
    # many labelled resource feedback examples ("helpful" / "not helpful" votes, and completions
    # followed by a new mastery estimate).
    "RECOMMENDER_MIN_FEEDBACK": 30,
    # A skill counts as mastered at this mastery; below it (with its prerequisites mastered) it
    # is ready to learn.
    "RECOMMENDER_TARGET_MASTERY": 0.8,
    # Practice items are chosen where the student's chance of success lies in this band.
    "RECOMMENDER_BAND": (0.6, 0.85),
    # Suggestions of each kind (practice items, resources) per student, and at most this many on
    # one skill.
    "RECOMMENDER_COUNT": 5,
    "RECOMMENDER_PER_SKILL": 2,
    # Webhooks reach only public internet addresses: a url whose host is, or resolves to, a
    # loopback, private (10.x, 192.168.x, fc00::/7 ...) or carrier-grade NAT address is refused,
    # so a teacher cannot use a subscription to probe the school's own network. True allows
    # those, for a site whose receivers live inside its network (a Moodle on 10.x). Link-local
    # addresses (169.254.169.254, where cloud metadata services answer), multicast and reserved
    # ones are refused either way.
    "WEBHOOK_ALLOW_PRIVATE_HOSTS": False,
    # Fernet keys (Fernet.generate_key()) that encrypt the secrets the database holds (webhook
    # signing secrets, the LTI tool's private keys; edu_dl.encryption): the first encrypts,
    # all decrypt. Empty: one key derived from SECRET_KEY, which then must never change.
    "ENCRYPTION_KEYS": [],
}

KNOWN_DEVICES = ("cpu", "cuda", "auto")


class EduDlSettings:
    """Attribute access to ``settings.EDU_DL`` merged over :data:`DEFAULTS`."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"edu_dl has no option {name!r}")
        user_options = getattr(settings, "EDU_DL", {}) or {}
        return user_options.get(name, DEFAULTS[name])

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in DEFAULTS}


edu_settings = EduDlSettings()


def require_valid(option: str, problem: str | None) -> None:
    """Raise the one clear start-up error for an invalid option (used outside system checks)."""
    if problem:
        raise ImproperlyConfigured(f"settings.EDU_DL[{option!r}] {problem}")
