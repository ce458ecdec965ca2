"""Grading by rule: the answers of choice, numeric and exact-text items, checked against the key.

Pure Python on an :class:`Item` already read: no database writes and no torch, because the web
process grades these at once when a student submits (see :mod:`edu_dl.services.submissions`).

* ``single_choice``: the answer is one option id; right or wrong.
* ``multiple_choice``: a list of distinct option ids. ``all_or_nothing`` credit: right only when
  exactly the correct options are picked. ``proportional``: (right picks - wrong picks) / correct
  options, never below 0, of the item's score range.
* ``numeric``: a number or a numeric text (``"4.5"``, ``"1e3"``, full-width digits); not NaN or
  infinity. Without ``numeric_tolerance`` it must equal the key; ``absolute`` tolerance allows
  ``|answer - key| <= tolerance``, ``relative`` allows ``|answer - key| <= tolerance * |key|``.
* ``exact_text``, ``normalized``: the answer, Unicode NFKC normalised, case folded and with its
  whitespace collapsed, equals one accepted text normalised the same way. ``regex``: the key is
  a regular expression that must match the whole answer (``fullmatch``) after NFKC and
  whitespace collapsing; case is kept, so a pattern that ignores it says ``(?i)``.

Every answer goes through :func:`answer_validate` first, which names the item and what is wrong.

Regular-expression keys are written by teachers and matched while the student's request waits,
so they are compiled and matched by the ``regex`` package (its default VERSION0 reads and matches
patterns as ``re`` does) under a time limit, ``EDU_DL["GRADING_REGEX_TIMEOUT_S"]``: a pattern
such as ``(a|aa)+b`` would otherwise backtrack for hours on a long answer. An answer that the rule
cannot decide in time is not refused, it is valid: :func:`rule_grade` raises
:class:`RuleCannotGrade` with the reason, and the submission service keeps the answer and sends
it to the teacher's review queue. Authoring compiles keys with :func:`regex_key_compile`, the
function grading uses, so a key accepted there is the key graded with.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any

import regex
from django.utils.translation import gettext_noop

from edu_dl.conf import edu_settings
from edu_dl.models import Item
from edu_dl.services.errors import ValidationFailed

logger = logging.getLogger(__name__)

# Floating-point rounding must not push an answer on the edge of its tolerance out: 3.6 is within
# 0.1 of 3.5 although 3.6 - 3.5 is 0.10000000000000009. One part in a billion of the numbers
# compared is far below any tolerance a teacher sets and far above rounding error.
ROUNDING_SLACK = 1e-9

# How many wrong values an error message lists.
NAMED_IN_ERRORS = 5

# A numeric text: digits with an optional sign, decimal point and exponent (after NFKC, so
# full-width digits count). Stricter than float(), which also takes "1_000", "nan" and "inf".
NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

TEXT_KINDS = frozenset({Item.Kind.EXACT_TEXT, Item.Kind.SHORT_ANSWER, Item.Kind.ESSAY})

# Compiled regular-expression answer keys a process keeps: one per regex item being answered.
REGEX_KEYS_CACHED = 256

# Why an answer waits for the teacher instead of a rule's grade (Response.review_reason). Stored
# in English like the other reasons, so that the API gives one stable text; marked for
# translation, and the review pages show it in the teacher's language.
REASON_REGEX_TIMEOUT = gettext_noop(
    "the answer took too long to check against the answer key's regular expression; "
    "grade it by hand (a simpler pattern avoids this)"
)
REASON_REGEX_INVALID = gettext_noop(
    "the answer key's regular expression cannot be read; grade the answer by hand and correct "
    "the key"
)


class RuleCannotGrade(Exception):
    """The rule cannot decide this answer's grade; the answer goes to the teacher for ``reason``.

    Not a refusal: the answer is valid and is kept. Raised when a regular-expression key takes
    longer than ``EDU_DL["GRADING_REGEX_TIMEOUT_S"]`` on it, or does not compile (a key stored
    before keys were checked with the grading engine).
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RuleGrade:
    """A rule's grade of one answer; ``detail`` says why, for the teacher and the grade history."""

    score: float
    max_score: float
    correct: bool
    detail: str


# --- Normalising and validating ----------------------------------------------------------------


def text_normalize(text: str) -> str:
    """Text as compared in ``normalized`` mode: NFKC, case folded, whitespace collapsed.

    NFKC before and after case folding is Unicode's canonical caseless match (folding can
    produce characters that NFKC would compose differently).
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def _regex_subject(text: str) -> str:
    """The text a ``regex`` key is matched against: NFKC, whitespace collapsed, case kept."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@functools.lru_cache(maxsize=REGEX_KEYS_CACHED)
def regex_key_compile(pattern: str) -> regex.Pattern:
    """The regular-expression answer key ``pattern`` compiled by the engine that grades with it,
    once per key and process; raises ``regex.error`` when it is not a valid pattern.

    The ``regex`` package in its default VERSION0: the syntax and matching of ``re``, plus a time
    limit on matching. Authoring checks keys with this function, so a key accepted there
    compiles here.
    """
    return regex.compile(pattern)


def _item_name(item: Item) -> str:
    return f"item {item.pk}" + (f" ({item.title})" if item.title else "")


def _refuse(item: Item, problem: str) -> ValidationFailed:
    return ValidationFailed(f"the answer to {_item_name(item)} {problem}", field="answers")


def _listed(values: list[str]) -> str:
    named = ", ".join(repr(value) for value in values[:NAMED_IN_ERRORS])
    more = len(values) - NAMED_IN_ERRORS
    return named + (f" and {more} more" if more > 0 else "")


def answer_is_empty(item: Item, answer: Any) -> bool:
    """Whether the student gave no answer: nothing, blank text, or no option picked."""
    if answer is None:
        return True
    if isinstance(answer, str):
        return not answer.strip()
    if isinstance(answer, list) and item.kind == Item.Kind.MULTIPLE_CHOICE:
        return not answer
    return False


def _option_ids(item: Item) -> list[str]:
    return [option["id"] for option in item.options]


def _check_text(item: Item, answer: str) -> None:
    limit = edu_settings.GRADING_MAX_ANSWER_CHARS
    if len(answer) > limit:
        raise _refuse(
            item, f"is {len(answer)} characters long; at most {limit} characters are allowed"
        )
    if "\x00" in answer:
        # PostgreSQL cannot store the NUL character in text or JSON.
        raise _refuse(item, "contains a NUL character")
    try:
        answer.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate, e.g. from a JSON "\\ud800"
        raise _refuse(item, "is not valid Unicode text") from error


def _number(item: Item, answer: Any) -> float:
    if isinstance(answer, bool) or not isinstance(answer, int | float | str):
        raise _refuse(item, f"must be a number, not {type(answer).__name__}")
    if isinstance(answer, str):
        text = unicodedata.normalize("NFKC", answer).strip()
        if not NUMBER_TEXT.fullmatch(text):
            raise _refuse(item, f"{answer!r} is not a number")
        answer = text
    try:
        value = float(answer)
    except OverflowError:  # an integer beyond the range of floats
        value = math.inf
    if not math.isfinite(value):
        raise _refuse(item, "must be a finite number")
    return value


def answer_validate(*, item: Item, answer: Any) -> Any:
    """The answer in its normalised form, or :class:`ValidationFailed` naming the item and what
    is wrong with it.

    Normalised: an option id for single choice, a list of distinct option ids for multiple
    choice, a float for numeric items (numeric texts are read), texts unchanged (stored exactly
    as written). An empty answer (:func:`answer_is_empty`) is returned as it is: it is allowed,
    and the item's ``empty_answer_policy`` decides its grade.
    """
    if isinstance(answer, str):
        _check_text(item, answer)
    if answer_is_empty(item, answer):
        return answer
    kind = item.kind
    if kind == Item.Kind.SINGLE_CHOICE:
        if not isinstance(answer, str):
            raise _refuse(item, f"must be an option id (a text), not {type(answer).__name__}")
        if answer not in _option_ids(item):
            raise _refuse(item, f"names an unknown option {answer!r}")
        return answer
    if kind == Item.Kind.MULTIPLE_CHOICE:
        if not isinstance(answer, list) or not all(isinstance(value, str) for value in answer):
            raise _refuse(item, "must be a list of option ids")
        known = set(_option_ids(item))
        unknown = sorted({value for value in answer if value not in known})
        if unknown:
            raise _refuse(item, f"names unknown options {_listed(unknown)}")
        repeated = sorted(value for value, count in Counter(answer).items() if count > 1)
        if repeated:
            raise _refuse(item, f"picks an option more than once: {_listed(repeated)}")
        return list(answer)
    if kind == Item.Kind.NUMERIC:
        return _number(item, answer)
    if kind in TEXT_KINDS:
        if not isinstance(answer, str):
            raise _refuse(item, f"must be text, not {type(answer).__name__}")
        return answer
    raise _refuse(item, f"cannot be checked: unknown item kind {kind!r}")


# --- Grading -----------------------------------------------------------------------------------


def _grade(item: Item, fraction: float, detail: str) -> RuleGrade:
    """The score ``fraction`` (0 to 1) of the way from the item's min to its max score."""
    score = item.min_score + fraction * (item.max_score - item.min_score)
    return RuleGrade(score=score, max_score=item.max_score, correct=fraction >= 1.0, detail=detail)


def _within(answer: float, key: float, allowed: float) -> bool:
    slack = ROUNDING_SLACK * max(1.0, abs(answer), abs(key))
    return abs(answer - key) <= allowed + slack


def _grade_numeric(item: Item, value: float) -> RuleGrade:
    key = float(item.answer_key)
    tolerance = item.numeric_tolerance
    if tolerance is None:
        right = value == key
        rule = f"exactly {key:g}"
    elif item.tolerance_mode == Item.ToleranceMode.RELATIVE:
        right = _within(value, key, tolerance * abs(key))
        rule = f"{key:g} within {tolerance:g} of it (relative)"
    else:
        right = _within(value, key, tolerance)
        rule = f"{key:g} within {tolerance:g}"
    verdict = "right" if right else "wrong"
    return _grade(item, 1.0 if right else 0.0, f"{value:g}: {verdict}; expected {rule}")


def _grade_multiple_choice(item: Item, picks: list[str]) -> RuleGrade:
    correct_options = set(item.answer_key)
    right = len(correct_options.intersection(picks))
    wrong = len(picks) - right
    counts = f"{right} of {len(correct_options)} correct options picked, {wrong} wrong"
    if item.multiple_choice_credit == Item.MultipleChoiceCredit.PROPORTIONAL:
        fraction = max(0.0, (right - wrong) / len(correct_options))
        return _grade(item, fraction, f"{counts}; proportional credit")
    exact = right == len(correct_options) and wrong == 0
    return _grade(item, 1.0 if exact else 0.0, f"{counts}; all or nothing")


def _grade_regex(item: Item, text: str) -> RuleGrade:
    """Whether the whole answer matches the key, or :class:`RuleCannotGrade` when the key does
    not compile or takes longer than ``EDU_DL["GRADING_REGEX_TIMEOUT_S"]`` on this answer."""
    try:
        pattern = regex_key_compile(item.answer_key)
    except (regex.error, TypeError) as error:  # TypeError: a key that is not a text
        logger.error(
            "item %s: its regular-expression answer key does not compile: %s", item.pk, error
        )
        raise RuleCannotGrade(REASON_REGEX_INVALID) from error
    subject = _regex_subject(text)
    limit = edu_settings.GRADING_REGEX_TIMEOUT_S
    try:
        right = pattern.fullmatch(subject, timeout=limit) is not None
    except TimeoutError as error:
        # The answer is not in the log: it is the student's work. Its length says enough.
        logger.warning(
            "item %s: its regular-expression answer key took longer than %ss on an answer of %d "
            "characters; the answer goes to the teacher",
            item.pk,
            limit,
            len(subject),
        )
        raise RuleCannotGrade(REASON_REGEX_TIMEOUT) from error
    detail = "matches the pattern" if right else "does not match the pattern"
    return _grade(item, 1.0 if right else 0.0, detail)


def _grade_exact_text(item: Item, text: str) -> RuleGrade:
    if item.text_match == Item.TextMatch.REGEX:
        return _grade_regex(item, text)
    accepted = item.answer_key if isinstance(item.answer_key, list) else [item.answer_key]
    right = text_normalize(text) in {text_normalize(value) for value in accepted}
    detail = "equals an accepted answer" if right else "equals no accepted answer"
    return _grade(item, 1.0 if right else 0.0, detail)


def rule_grade(*, item: Item, answer: Any) -> RuleGrade:
    """The grade of ``answer`` to a rule-graded item (validated first, see the module's doc).

    An empty answer gets the item's min score. Refused: an item that a model grades, and an
    answer :func:`answer_validate` refuses. :class:`RuleCannotGrade` (not a refusal) when the
    rule cannot decide a valid answer: its regular-expression key timed out on it or does not
    compile; the answer is then the teacher's to grade.
    """
    if not item.is_rule_graded:
        raise ValidationFailed(
            f"{_item_name(item)} is graded by a model or a teacher, not by rule (kind {item.kind})",
            field="item",
        )
    value = answer_validate(item=item, answer=answer)
    if answer_is_empty(item, value):
        return _grade(item, 0.0, "empty answer")
    if item.kind == Item.Kind.SINGLE_CHOICE:
        right = value == item.answer_key
        verdict = "right" if right else "wrong"
        return _grade(item, 1.0 if right else 0.0, f"option {value!r}: {verdict}")
    if item.kind == Item.Kind.MULTIPLE_CHOICE:
        return _grade_multiple_choice(item, value)
    if item.kind == Item.Kind.NUMERIC:
        return _grade_numeric(item, value)
    return _grade_exact_text(item, value)
