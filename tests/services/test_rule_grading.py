"""Grading by rule: each item kind and option, answers on the edge, and answers refused."""

from __future__ import annotations

import re

import pytest

from edu_dl.models import Item
from edu_dl.services import rule_grading
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.rule_grading import (
    REASON_REGEX_INVALID,
    REASON_REGEX_TIMEOUT,
    RuleCannotGrade,
    RuleGrade,
    answer_is_empty,
    answer_validate,
    regex_key_compile,
    rule_grade,
    text_normalize,
)
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


# --- single choice -------------------------------------------------------------------------------


def test_single_choice_scores_the_key_full_and_another_option_the_minimum():
    # given
    item = ItemFactory(single_choice=True, min_score=1, max_score=3)

    # when
    right = rule_grade(item=item, answer="a")
    wrong = rule_grade(item=item, answer="b")

    # then
    assert right == RuleGrade(score=3.0, max_score=3.0, correct=True, detail="option 'a': right")
    assert wrong == RuleGrade(score=1.0, max_score=3.0, correct=False, detail="option 'b': wrong")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("z", "names an unknown option 'z'"),
        (1, "must be an option id (a text), not int"),
        (["a"], "must be an option id (a text), not list"),
    ],
)
def test_single_choice_refuses_what_is_not_one_of_its_options(answer, problem):
    item = ItemFactory(single_choice=True, title="Sky")

    with pytest.raises(ValidationFailed) as error:
        rule_grade(item=item, answer=answer)

    assert error.value.message == f"the answer to item {item.pk} (Sky) {problem}"
    assert error.value.field == "answers"


# --- multiple choice -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("picks", "score", "correct"),
    [
        (["a", "c"], 4.0, True),
        (["c", "a"], 4.0, True),
        (["a"], 0.0, False),
        (["a", "b", "c"], 0.0, False),
        (["b", "d"], 0.0, False),
    ],
)
def test_multiple_choice_all_or_nothing_needs_exactly_the_correct_options(picks, score, correct):
    item = ItemFactory(multiple_choice=True, max_score=4)

    grade = rule_grade(item=item, answer=picks)

    assert (grade.score, grade.correct) == (score, correct)


@pytest.mark.parametrize(
    ("picks", "score", "correct", "detail"),
    [
        (["a", "c"], 4.0, True, "2 of 2 correct options picked, 0 wrong"),
        (["a"], 2.0, False, "1 of 2 correct options picked, 0 wrong"),
        (["a", "c", "b"], 2.0, False, "2 of 2 correct options picked, 1 wrong"),
        (["a", "b"], 0.0, False, "1 of 2 correct options picked, 1 wrong"),
        # Floored at 0: more wrong picks than right ones take nothing away.
        (["b", "d"], 0.0, False, "0 of 2 correct options picked, 2 wrong"),
        (["a", "b", "d"], 0.0, False, "1 of 2 correct options picked, 2 wrong"),
    ],
)
def test_multiple_choice_proportional_credit_is_right_minus_wrong_over_correct(
    picks, score, correct, detail
):
    # given options a b c d, of which a and c are correct
    item = ItemFactory(multiple_choice=True, multiple_choice_credit="proportional", max_score=4)

    # when
    grade = rule_grade(item=item, answer=picks)

    # then
    assert (grade.score, grade.correct, grade.detail) == (
        score,
        correct,
        f"{detail}; proportional credit",
    )


def test_proportional_credit_is_a_share_of_the_range_from_the_minimum_score():
    item = ItemFactory(
        multiple_choice=True, multiple_choice_credit="proportional", min_score=1, max_score=3
    )

    assert rule_grade(item=item, answer=["c"]).score == 2.0
    assert rule_grade(item=item, answer=["b"]).score == 1.0


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (["a", "z", "y"], "names unknown options 'y', 'z'"),
        (["a", "a", "c"], "picks an option more than once: 'a'"),
        ("a", "must be a list of option ids"),
        (["a", 3], "must be a list of option ids"),
    ],
)
def test_multiple_choice_refuses_unknown_repeated_or_malformed_picks(answer, problem):
    item = ItemFactory(multiple_choice=True, title="Primes")

    with pytest.raises(ValidationFailed) as error:
        answer_validate(item=item, answer=answer)

    assert error.value.message == f"the answer to item {item.pk} (Primes) {problem}"


# --- numeric -------------------------------------------------------------------------------------


# The last is a full-width 42.
@pytest.mark.parametrize("answer", [42, 42.0, "42", " 4.2e1 ", "+42.", "\uff14\uff12"])
def test_numeric_without_tolerance_accepts_the_key_written_any_way(answer):
    item = ItemFactory(numeric=True)

    grade = rule_grade(item=item, answer=answer)

    assert (grade.score, grade.correct) == (1.0, True)


@pytest.mark.parametrize("answer", [41.999999, 42.000001, "-42"])
def test_numeric_without_tolerance_is_exact(answer):
    item = ItemFactory(numeric=True)

    assert rule_grade(item=item, answer=answer).correct is False


@pytest.mark.parametrize(
    ("answer", "correct"),
    # 3.6 - 3.5 is 0.10000000000000009 in floating point: still on the edge, still right.
    [(3.6, True), (3.4, True), ("3.55", True), (3.61, False), (3.39, False)],
)
def test_numeric_absolute_tolerance_includes_its_edges(answer, correct):
    item = ItemFactory(numeric=True, answer_key=3.5, numeric_tolerance=0.1)

    grade = rule_grade(item=item, answer=answer)

    assert grade.correct is correct
    assert grade.detail.endswith("expected 3.5 within 0.1")


@pytest.mark.parametrize(
    ("key", "answer", "correct"),
    [
        (200, 210, True),
        (200, 190, True),
        (200, 210.01, False),
        (200, 189.99, False),
        (-200, -210, True),
        (-200, 210, False),
    ],
)
def test_numeric_relative_tolerance_is_a_share_of_the_key(key, answer, correct):
    item = ItemFactory(
        numeric=True, answer_key=key, numeric_tolerance=0.05, tolerance_mode="relative"
    )

    assert rule_grade(item=item, answer=answer).correct is correct


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("nan", "'nan' is not a number"),
        ("inf", "'inf' is not a number"),
        (float("nan"), "must be a finite number"),
        (float("-inf"), "must be a finite number"),
        ("1e400", "must be a finite number"),
        (10**400, "must be a finite number"),
        ("1_000", "'1_000' is not a number"),
        ("3,5", "'3,5' is not a number"),
        ("forty-two", "'forty-two' is not a number"),
        (True, "must be a number, not bool"),
        ([42], "must be a number, not list"),
    ],
)
def test_numeric_refuses_what_is_not_a_finite_number(answer, problem):
    item = ItemFactory(numeric=True, title="Product")

    with pytest.raises(ValidationFailed) as error:
        rule_grade(item=item, answer=answer)

    assert error.value.message == f"the answer to item {item.pk} (Product) {problem}"


def test_a_numeric_answer_is_validated_to_a_float():
    item = ItemFactory(numeric=True)

    assert answer_validate(item=item, answer=" 1e3 ") == 1000.0
    assert answer_validate(item=item, answer=7) == 7.0


# --- exact text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "answer"),
    [
        ("abc", "\uff21\uff22\uff23"),  # full-width ABC (NFKC)
        ("Paris", "  paris  "),
        ("New York", "new   york"),
        ("New York", "New\u00a0York"),  # a no-break space
        ("Straße", "STRASSE"),  # case folding, not just lower()
        (["H2O", "water"], "Water"),
        ("ﬁsh", "fish"),  # a ligature (NFKC)
    ],
)
def test_exact_text_matches_after_normalising_both_sides(key, answer):
    item = ItemFactory(exact_text=True, answer_key=key)

    grade = rule_grade(item=item, answer=answer)

    assert (grade.correct, grade.detail) == (True, "equals an accepted answer")


@pytest.mark.parametrize("answer", ["Pariss", "Paris, France", "Par is"])
def test_exact_text_refuses_other_texts(answer):
    item = ItemFactory(exact_text=True, answer_key="Paris", min_score=0, max_score=2)

    grade = rule_grade(item=item, answer=answer)

    assert grade == RuleGrade(
        score=0.0, max_score=2.0, correct=False, detail="equals no accepted answer"
    )


def test_text_normalize_is_nfkc_casefold_and_collapsed_whitespace():
    assert text_normalize("  \uff28ello\t\n WORLD ") == "hello world"


@pytest.mark.parametrize(
    ("pattern", "answer", "correct"),
    [
        (r"(?i)h2o|water", "H2O", True),
        (r"(?i)h2o|water", "water", True),
        (r"(?i)h2o|water", "  water ", True),
        (r"(?i)h2o|water", "\uff28\uff12\uff2f", True),  # full-width H2O: NFKC first
        (r"(?i)h2o|water", "waterfall", False),  # the whole answer must match
        (r"(?i)h2o|water", "salt water", False),
        (r"H2O", "h2o", False),  # case is the pattern's business
        (r"\d+ apples", "12   apples", True),  # whitespace collapsed
    ],
)
def test_regex_exact_text_must_match_the_whole_answer(pattern, answer, correct):
    item = ItemFactory(exact_text=True, text_match="regex", answer_key=pattern)

    grade = rule_grade(item=item, answer=answer)

    assert grade.correct is correct
    assert grade.detail == ("matches the pattern" if correct else "does not match the pattern")


@pytest.mark.parametrize(
    ("pattern", "answer", "correct"),
    [
        (r"(?i)colou?r", "COLOR", True),
        (r"(?i)colou?r", "colours", False),
        (r"\d{3}-\d{4}", "555-1234", True),
        (r"\d{3}-\d{4}", "555-12345", False),
        (r"[A-Z]\w*", "Émile", False),  # É is not in A-Z
        (r"\w+", "café", True),  # \w is Unicode-aware ...
        (r"(?a)\w+", "café", False),  # ... unless the pattern asks for ASCII
        (r"a|ab", "ab", True),  # fullmatch backtracks into the second alternative
        (r"(?x) 4 \s* \+ \s* 4", "4 + 4", True),
        (r"(\w+) \1", "bye bye", True),
        (r"(\w+) \1", "bye now", False),
        (r"[^\W\d_]+", "naïve", True),
        (r"(?P<unit>cm|mm) \(?P=unit\)", "cm (cm)", False),  # \( and \) escape, no group
        (r"(?P<unit>cm|mm)-(?P=unit)", "mm-mm", True),
    ],
)
def test_regex_keys_grade_exactly_as_re_reads_them(pattern, answer, correct):
    # given a key of the kind teachers write
    item = ItemFactory(exact_text=True, text_match="regex", answer_key=pattern)

    # when
    grade = rule_grade(item=item, answer=answer)

    # then the grade is the one the re module, which graded regex keys before, gives
    assert (re.fullmatch(pattern, " ".join(answer.split())) is not None) is correct
    assert grade.correct is correct


def test_a_regex_key_that_backtracks_for_ever_leaves_a_long_answer_to_the_teacher():
    # given a key whose alternatives overlap: a run of n "a"s splits into "a"s and "aa"s in
    # Fibonacci(n) ways, and a backtracking engine tries them all before it gives up on the
    # missing "b" (regex's guards make (a+)+b merely quadratic, about 0.1 s on 5000 "a"s, so
    # that key would not show the limit reliably); and an answer of 5000 "a"s
    item = ItemFactory(exact_text=True, text_match="regex", answer_key=r"(a|aa)+b")

    # when it is graded
    with pytest.raises(RuleCannotGrade) as cannot:
        rule_grade(item=item, answer="a" * 5000)

    # then the rule gives up at the time limit and says why, for the teacher
    assert cannot.value.reason == REASON_REGEX_TIMEOUT
    assert cannot.value.reason == (
        "the answer took too long to check against the answer key's regular expression; "
        "grade it by hand (a simpler pattern avoids this)"
    )


def test_the_same_key_still_grades_answers_it_can_decide():
    item = ItemFactory(exact_text=True, text_match="regex", answer_key=r"(a|aa)+b")

    assert rule_grade(item=item, answer="a" * 5000 + "b").correct is True
    assert rule_grade(item=item, answer="ab").correct is True
    assert rule_grade(item=item, answer="b").correct is False


def test_the_regex_time_limit_comes_from_the_settings(settings, monkeypatch):
    # given a site that allows a regular expression 0.25 seconds, and the engine's matcher
    # replaced by one that records the limit it is given
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_REGEX_TIMEOUT_S": 0.25}
    limits = []

    class RecordingPattern:
        def fullmatch(self, subject, *, timeout):
            limits.append((subject, timeout))
            return None

    monkeypatch.setattr(rule_grading, "regex_key_compile", lambda pattern: RecordingPattern())
    item = ItemFactory(exact_text=True, text_match="regex", answer_key=r"a+")

    # when
    grade = rule_grade(item=item, answer="  b  b ")

    # then
    assert limits == [("b b", 0.25)]
    assert grade.correct is False


def test_a_stored_key_that_does_not_compile_leaves_the_answer_to_the_teacher():
    # given an item whose key was stored without the authoring check (an old row, the admin)
    item = ItemFactory(exact_text=True, text_match="regex", answer_key="unclosed")
    Item.objects.filter(pk=item.pk).update(answer_key="(unclosed")
    item.refresh_from_db()

    # when
    with pytest.raises(RuleCannotGrade) as cannot:
        rule_grade(item=item, answer="unclosed")

    # then
    assert cannot.value.reason == REASON_REGEX_INVALID


def test_a_regex_key_is_compiled_once_per_process():
    assert regex_key_compile(r"(?i)h2o|water") is regex_key_compile(r"(?i)h2o|water")


# --- empty answers, text answers and their size --------------------------------------------------


@pytest.mark.parametrize(
    ("traits", "answer", "empty"),
    [
        ({"single_choice": True}, None, True),
        ({"single_choice": True}, "", True),
        ({"multiple_choice": True}, [], True),
        ({"numeric": True}, "  ", True),
        ({"numeric": True}, 0, False),
        ({"numeric": True}, "0", False),
        ({}, "\n\t ", True),
        ({}, ".", False),
        ({"exact_text": True}, None, True),
    ],
)
def test_answer_is_empty_means_nothing_given(traits, answer, empty):
    item = ItemFactory(**traits)

    assert answer_is_empty(item, answer) is empty


@pytest.mark.parametrize(
    "traits",
    [{"single_choice": True}, {"multiple_choice": True}, {"numeric": True}, {"exact_text": True}],
)
def test_an_empty_answer_gets_the_minimum_score(traits):
    item = ItemFactory(**traits, min_score=0.5, max_score=2)

    grade = rule_grade(item=item, answer=None)

    assert grade == RuleGrade(score=0.5, max_score=2.0, correct=False, detail="empty answer")


def test_a_text_answer_of_exactly_the_limit_is_accepted_one_more_is_refused():
    item = ItemFactory(title="Explain")
    at_limit = "x" * 20000

    assert answer_validate(item=item, answer=at_limit) == at_limit
    with pytest.raises(ValidationFailed) as error:
        answer_validate(item=item, answer=at_limit + "x")

    assert error.value.message == (
        f"the answer to item {item.pk} (Explain) is 20001 characters long; "
        "at most 20000 characters are allowed"
    )


def test_the_answer_size_limit_comes_from_the_settings(settings):
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_MAX_ANSWER_CHARS": 5}
    item = ItemFactory(exact_text=True, title="")

    with pytest.raises(ValidationFailed, match="is 6 characters long; at most 5 characters"):
        rule_grade(item=item, answer="Paris!")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (42, "must be text, not int"),
        ({"text": "blue"}, "must be text, not dict"),
        ("blue\x00", "contains a NUL character"),
        ("blue \ud800", "is not valid Unicode text"),
    ],
)
def test_text_answers_must_be_storable_text(answer, problem):
    item = ItemFactory(title="Explain")

    with pytest.raises(ValidationFailed) as error:
        answer_validate(item=item, answer=answer)

    assert error.value.message == f"the answer to item {item.pk} (Explain) {problem}"


def test_a_text_answer_is_kept_exactly_as_written():
    item = ItemFactory()
    answer = "  <script>alert('hi')</script> <b>Rayleigh</b>  "

    assert answer_validate(item=item, answer=answer) == answer


def test_rule_grade_refuses_an_item_a_model_grades():
    item = ItemFactory(kind="essay", title="Essay")

    with pytest.raises(ValidationFailed) as error:
        rule_grade(item=item, answer="An essay.")

    assert error.value.message == (
        f"item {item.pk} (Essay) is graded by a model or a teacher, not by rule (kind essay)"
    )
