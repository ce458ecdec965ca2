"""Importing answer histories into a course: files (csv, akt, dkt) and API batches.

One engine serves ``manage.py import_interactions`` (:func:`interactions_import`) and the API's
bulk endpoint (:func:`interactions_import_records`): the same checks, the same mapping of the
input's ids to students, items and skills, the same idempotency keys.

What the input's ids become
---------------------------
*Students* are matched in the course, first by ``Enrollment.external_id`` (the id the school's
other systems use, which is what exports carry), then by the username of someone enrolled.
Only the course's own enrolments are searched: a file can never attach answers to, or enrol,
an account that is not in the course already (a file naming ``admin`` gets a new student, not
the site's administrator), and a match enrolled as teacher or assistant is refused. An id that
matches nobody becomes a new user with an unusable password (nobody can sign in as them until
an administrator decides so) named ``<course slug>-<id>`` (characters a username cannot hold
become ``-``, too long a name is cut, a taken one gets a number), enrolled as a student with
``external_id`` = the id, so that every later import and every LMS sync using the id finds them.

In akt and dkt files a block's header is a student id (``index,original_id`` or one id) or the
number of answers that follow. The file decides, not each block: its headers are lengths when
every block in its first 80 non-blank lines starts with its own length (dkt files always do),
and a later block that does not is refused; otherwise every header is an id, even one that
happens to equal its block's length. A student named by a length is known by the file and
their place in it: external id ``<file id>#<n>`` (see "the same file" below).

*Items* are matched by ``Item.external_id`` in the course; a missing one is created by
:func:`history_items_create` (inactive, short answer, carrying every skill the input names
for it). *Skills* are matched by ``Skill.external_id``, then by name; a missing one is created
with both set to the input's id, so renaming it later (to its real name) keeps it matched.

An answer's ``skill_ids`` are the skills its row names, or its item's skills when it names none.
A row that names no skill for an item the course lacks (and no earlier row gave skills to) is
refused: the answer would trace nothing.

Idempotency: when two answers are the same
------------------------------------------
Every interaction gets an external id (unique per course and source) built from database ids,
so the same answer imported twice, from whatever file, is stored once:

- timed rows (csv, API): ``t:<student pk>:<item pk>:<microseconds since 1970>``: who answered
  what, when (an answer without an item uses ``s<skill pks>`` instead of the item). Overlapping
  exports (last month's, then this month's) add only new answers; a row repeated inside one
  input counts as already present.
- sequences (akt, dkt) have no times: an answer is its student and the whole sequence up to it,
  ``q:<student pk>:<position>:<hash of the student's answers 0..position>``. Re-importing a file,
  a renamed or re-compressed copy, a fold file sharing students with another, or a later export
  in which sequences have grown adds only the answers not stored yet, while a different sequence
  of the same student id (another data set) is not mistaken for a stored one.

*The same file* matters only for students named by their sequence length: a block file is
identified by a hash of its first student block, normalised (spaces, blank lines and trailing
commas do not count). The same file under another name or compression, or with students
appended, maps its anonymous students to the same accounts; another file gets new ones.

*Synthesised times*: answer ``n`` of an akt or dkt sequence is stamped :data:`SEQUENCE_EPOCH`
+ ``n`` seconds. Each student's order is kept, a re-import gives the same times, and imported
history sorts before anything answered in the app.

Checking and failing
--------------------
Every refused row is reported with its line (for records: their 1-based position, which is the
line of an NDJSON body) and the reason: the readers' format errors (:mod:`edu_dl.ml.kt.formats`)
and the domain's (an id too long, a student enrolled as staff, an item with no skill, a time in
the future or without a zone, a negative attempt or duration; see
:func:`~edu_dl.services.interactions.interaction_values_problem`). By default the first bad row
stops the import and nothing at all is written: the whole input is read and checked before the
first write, and everything is written in one transaction. With ``skip_invalid`` the valid rows
are imported and every refused one goes to the result and to a report CSV (``line,reason,raw``);
for akt and dkt a refused answer refuses its student's whole block (a sequence with a hole would
teach the models a history that never happened).

Speed
-----
The input is read once, as a stream; the checked answers wait in compact arrays (no Python
object per answer) until the students, items and skills they name exist. On PostgreSQL they are
then written with ``COPY``: the answers of students with no stored answers from the same source
(whose keys cannot collide, since every key starts with the student's pk) straight into the
table; the others through a temporary table and ``INSERT ... SELECT`` that skips stored keys
(an anti-join, then ``ON CONFLICT DO NOTHING`` for keys repeated in the input or written
meanwhile; a repeat among the first kind sends them all the second way). Other databases get
``bulk_create(ignore_conflicts=True)`` in batches. Imports into one course are
serialised by an advisory lock, so two of them never race to create the same students.
``benchmarks/bench_import_interactions.py`` measures a million answers (5,000 students, 20,000
new items): about 50 s for the first import and 25-30 s for a re-import on 2 shared CPU cores
with PostgreSQL 15. A third of the first import is PostgreSQL checking the foreign keys at
commit, another third writing the rows and their eight indexes.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import math
import os
import re
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from edu_dl.models import Course, Enrollment, Interaction, Item, Skill
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.interactions import FUTURE_TOLERANCE, interaction_values_problem

FORMATS = ("csv", "akt", "dkt")
# Answer n of an akt or dkt sequence is stamped SEQUENCE_EPOCH + n seconds.
SEQUENCE_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The result keeps this many rejected rows; the report file keeps all of them.
KEPT_REJECTIONS = 1000
REPORT_COLUMNS = ("line", "reason", "raw")
RECORD_FIELDS = ("student", "item", "skills", "correct", "timestamp", "attempt", "duration_s")
ID_MAX_LENGTH = 255  # Enrollment, Item, Skill and Interaction external ids
SKILL_NAME_MAX_LENGTH = 200

_ONE_MICROSECOND = timedelta(microseconds=1)
_SEQUENCE_EPOCH_MICROS = (SEQUENCE_EPOCH - UNIX_EPOCH) // _ONE_MICROSECOND
_NONE = -1  # "no item", "no attempt" in the staging arrays
_ITEM_SKILLS = -1  # the answer takes its item's skills
_DETECTION_LINES = 80  # non-blank lines read to tell 3- from 4-line akt files
_RECENT_LINES = 256  # lines remembered for the report's raw column
_BATCH = 2000  # rows per bulk_create (databases without COPY)
_COPY_CHUNK = 5000  # rows per write to a COPY stream
_QUERY_CHUNK = 500  # ids per ``__in`` query (SQLite limits parameters)
_LOCK_NAMESPACE = 0x45445549  # pg_advisory_xact_lock(namespace, course): "EDUI"
_USERNAME_CHARACTERS = re.compile(r"[^\w.@+-]")
_COPY_NULL = "\\N"


@dataclass(frozen=True)
class Rejection:
    """A refused row: its line (or record number), why, and its text as read."""

    line: int
    reason: str
    raw: str = ""


@dataclass
class ImportResult:
    """What an import read and did.

    ``read`` counts the rows (csv, records) or answers (akt, dkt) read, valid or not; a student
    block that cannot be parsed at all is one ``rejected`` entry and adds nothing to ``read``.
    ``imported`` + ``already_present`` is the number of valid answers.
    """

    read: int = 0
    imported: int = 0
    already_present: int = 0
    rejected: int = 0
    students_created: int = 0
    items_created: int = 0
    skills_created: int = 0
    # The first KEPT_REJECTIONS refused rows (all of them are in the report file).
    rejections: list[Rejection] = field(default_factory=list)
    # akt and dkt: the hash of the first student block that identifies the file.
    file_id: str = ""
    report_path: Path | None = None


class ImportFailed(ValidationFailed):
    """A bad row stopped the import; nothing was written."""

    def __init__(self, line: int, reason: str, *, field: str = "file"):
        super().__init__(
            f"line {line}: {reason}", field=field, extra={"line": line, "reason": reason}
        )
        self.line = line
        self.reason = reason


class _Unreadable(Exception):
    """The input stopped making sense (not UTF-8, a broken gzip stream, broken CSV quoting)."""

    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line
        self.reason = reason


def _pks_by_external_id(model, course: Course, keys: list[str]) -> dict[str, int]:
    """Primary keys of the course's rows of ``model`` (Skill or Item) by external id, read in
    chunks that stay under the database's parameter limits."""
    found: dict[str, int] = {}
    for chunk in _chunks(keys):
        found.update(
            model.objects.filter(course=course, external_id__in=chunk).values_list(
                "external_id", "pk"
            )
        )
    return found


def _chunks(values: Sequence[Any], size: int = _QUERY_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- items known only from a history ----------------------------------------------------------


def imported_item_text(external_id: str) -> tuple[str, str]:
    """Title and prompt of an item created by an import (its text is not in the file)."""
    return (
        f"Imported item {external_id}"[:200],
        "This item was created by an import of answer histories: its text is not in the "
        "imported data, only whether students answered it correctly.",
    )


@transaction.atomic
def history_items_create(
    *,
    course: Course,
    skills_by_item: Mapping[str, Sequence[Skill]],
    describe: Callable[[str], tuple[str, str]] = imported_item_text,
) -> int:
    """Create the items of ``skills_by_item`` (external id -> skills) that the course lacks.

    They stand for questions known only from an answer history (a data set, another LMS's
    export), which holds no text and no answer key, only whether students answered correctly.
    They are ``short_answer``, the least wrong kind: a rule-graded kind (numeric, exact text, a
    choice) would need an answer key nobody has and would mark every new answer wrong, while a
    short answer with no reference answer goes to a teacher, the right fate for a question
    nobody can check. They are inactive: they exist to carry the history, not to be handed out.
    ``describe`` gives each one's title and prompt from its external id. Returns how many were
    created.

    An import may create tens of thousands at once, so they are written in bulk rather than
    through :func:`~edu_dl.services.courses.item_bulk_create`: every one is the same valid
    shape (no options, no answer key, scores 0 to 1), and only the external ids and the skills
    come from outside, so those are what is checked here.
    """
    wanted = list(skills_by_item)
    too_long = [key for key in wanted if not key or len(key) > ID_MAX_LENGTH]
    if too_long:
        raise ValidationFailed(
            f"item external ids must have 1 to {ID_MAX_LENGTH} characters: {too_long[0][:40]!r}",
            field="external_id",
        )
    foreign = [
        skill.name
        for skills in skills_by_item.values()
        for skill in skills
        if skill.course_id != course.pk
    ]
    if foreign:
        raise ValidationFailed(
            f"skills {', '.join(sorted(set(foreign))[:5])} belong to another course than "
            f"{course.slug!r}",
            field="skills",
        )
    existing: set[str] = set()
    for chunk in _chunks(wanted):
        existing.update(
            Item.objects.filter(course=course, external_id__in=chunk).values_list(
                "external_id", flat=True
            )
        )
    missing = [key for key in wanted if key not in existing]
    items = []
    for external_id in missing:
        title, prompt = describe(external_id)
        items.append(
            Item(
                course=course,
                kind=Item.Kind.SHORT_ANSWER,
                title=title[:200],
                prompt=prompt,
                external_id=external_id,
                is_active=False,
            )
        )
    Item.objects.bulk_create(items, batch_size=1000)
    pks: dict[str, int] = {}
    for chunk in _chunks(missing):
        pks.update(
            Item.objects.filter(course=course, external_id__in=chunk).values_list(
                "external_id", "pk"
            )
        )
    link = Item.skills.through
    link.objects.bulk_create(
        [
            link(item_id=pks[key], skill_id=skill_pk)
            for key in missing
            for skill_pk in dict.fromkeys(skill.pk for skill in skills_by_item[key])
        ],
        batch_size=2000,
    )
    return len(missing)


# --- the course as the input will see it ------------------------------------------------------


class _CourseState:
    """The course's enrolments, items and skills by the ids an input may use, read once."""

    def __init__(self, course: Course):
        username_field = get_user_model().USERNAME_FIELD
        self.by_external_id: dict[str, tuple[int, str]] = {}
        self.by_username: dict[str, tuple[int, str]] = {}
        enrollments = (
            Enrollment.objects.filter(course=course)
            .order_by("pk")
            .values_list("user_id", "role", "external_id", f"user__{username_field}")
        )
        for user_id, role, external_id, username in enrollments:
            if external_id:
                self.by_external_id.setdefault(external_id, (user_id, role))
            self.by_username[username] = (user_id, role)
        self.items: dict[str, int] = dict(
            Item.objects.filter(course=course)
            .exclude(external_id="")
            .values_list("external_id", "pk")
        )
        self.skills_by_external_id: dict[str, int] = {}
        self.skills_by_name: dict[str, int] = {}
        for pk, name, external_id in Skill.objects.filter(course=course).values_list(
            "pk", "name", "external_id"
        ):
            self.skills_by_name[name] = pk
            if external_id:
                self.skills_by_external_id[external_id] = pk

    def student(self, key: str) -> tuple[int, str] | None:
        """(user pk, role) of the enrolment that ``key`` names, or None."""
        return self.by_external_id.get(key) or self.by_username.get(key)

    def skill(self, key: str) -> int | None:
        return self.skills_by_external_id.get(key) or self.skills_by_name.get(key)


# --- checked answers, waiting to be written ---------------------------------------------------

_UNSEEN = object()


class _Staging:
    """The valid answers of one input in compact columns, and the ids they use.

    Students, items and skills are numbered in order of first use; an answer is a row of small
    numbers in the arrays below, so a million answers take tens of megabytes, not gigabytes.
    """

    def __init__(self, *, course: Course, state: _CourseState, now: datetime, sequences: bool):
        self.course = course
        self.state = state
        self.now = now
        self.sequences = sequences
        self.students: dict[str, int] = {}
        self.items: dict[str, int] = {}
        self.skills: dict[str, int] = {}
        self.combos: dict[tuple[int, ...], int] = {}
        self._combo_of_names: dict[tuple[str, ...], int] = {}
        # Items the course lacks -> the skill sets (combos) the input names for them.
        self.new_item_combos: dict[int, set[int]] = {}
        # Items some answer takes its skills from.
        self.items_lending_skills: set[int] = set()
        self.latest = now + FUTURE_TOLERANCE  # later answers are refused
        self._student_verdicts: dict[str, str | None] = {}
        self._item_verdicts: dict[str, str | None] = {}
        self._skill_verdicts: dict[str, str | None] = {}
        self.student_column = array("i")
        self.item_column = array("i")
        self.combo_column = array("i")
        self.correct_column = bytearray()
        self.time_column = array("q")  # microseconds since 1970
        self.attempt_column = array("q")
        self.duration_column = array("d")  # NaN: none
        self.position_column = array("i")  # sequences: place in the student's sequence
        self.chain_column = array("Q")  # sequences: hash of the sequence up to the answer

    def __len__(self) -> int:
        return len(self.correct_column)

    # checks: each id is judged once, then remembered

    def _verdict(self, kind: str, key: str) -> str | None:
        verdicts: dict[str, str | None] = getattr(self, f"_{kind}_verdicts")
        verdict = verdicts.get(key, _UNSEEN)
        if verdict is _UNSEEN:
            verdict = verdicts[key] = getattr(self, f"_judge_{kind}")(key)
        return verdict  # type: ignore[return-value]

    def _judge_student(self, key: str) -> str | None:
        if len(key) > ID_MAX_LENGTH:
            return f"student id is {len(key)} characters long; at most {ID_MAX_LENGTH} are allowed"
        match = self.state.student(key)
        if match is not None and match[1] != Enrollment.Role.STUDENT:
            return (
                f"student {key!r} is enrolled in {self.course.slug!r} as {match[1]}, "
                "not as a student"
            )
        return None

    def _judge_item(self, key: str) -> str | None:
        if len(key) > ID_MAX_LENGTH:
            return f"item id is {len(key)} characters long; at most {ID_MAX_LENGTH} are allowed"
        return None

    def _judge_skill(self, key: str) -> str | None:
        if self.state.skill(key) is None and len(key) > SKILL_NAME_MAX_LENGTH:
            return (
                f"skill {key[:40]!r}... is {len(key)} characters long; a new skill's name may "
                f"have at most {SKILL_NAME_MAX_LENGTH}"
            )
        return None

    def check_student(self, key: str) -> str | None:
        """Why answers of the student with this id cannot be imported, or None."""
        return self._verdict("student", key)

    def check(
        self,
        *,
        student: str,
        item: str | None,
        skills: Sequence[str],
        timestamp: datetime | None,
        attempt: int | None = None,
        duration_s: float | None = None,
    ) -> str | None:
        """Why this answer cannot be imported, or None. ``timestamp`` None: a sequence's."""
        if (
            attempt is not None
            or duration_s is not None
            or (
                timestamp is not None
                and (timestamp.tzinfo is None or timestamp > self.latest)  # the common case skips
            )
        ):
            problem = interaction_values_problem(
                timestamp=timestamp or self.now,
                attempt=attempt,
                duration_s=duration_s,
                now=self.now,
            )
            if problem is not None:
                return problem
        problem = self._student_verdicts.get(student, _UNSEEN)
        if problem is _UNSEEN:
            problem = self._verdict("student", student)
        if problem is None and item is not None:
            problem = self._item_verdicts.get(item, _UNSEEN)
            if problem is _UNSEEN:
                problem = self._verdict("item", item)
        for skill in skills:
            if problem is not None:
                break
            problem = self._skill_verdicts.get(skill, _UNSEEN)
            if problem is _UNSEEN:
                problem = self._verdict("skill", skill)
        if problem is not None:
            return problem  # type: ignore[return-value]
        if not skills:
            if item is None:
                return "the row names neither an item nor a skill"
            if item not in self.state.items and self.items.get(item) not in self.new_item_combos:
                return (
                    f"item {item!r} is not in course {self.course.slug!r} and no skill is named "
                    "for it"
                )
        return None

    def _combo(self, skills: Sequence[str]) -> int:
        """The number of the set of skills ``skills`` names (in any order, repeats or not)."""
        numbers = self.skills
        indexes = []
        for skill in skills:
            index = numbers.get(skill)
            if index is None:
                index = numbers[skill] = len(numbers)
            indexes.append(index)
        key = tuple(sorted(set(indexes)))
        combo = self.combos.get(key)
        if combo is None:
            combo = self.combos[key] = len(self.combos)
        return combo

    def stage(
        self,
        *,
        student: str,
        item: str | None,
        skills: tuple[str, ...],
        correct: int | bool,
        micros: int,
        attempt: int | None = None,
        duration_s: float | None = None,
        position: int = 0,
        chain: int = 0,
    ) -> None:
        """Keep an answer that passed :meth:`check`."""
        student_index = self.students.get(student)
        if student_index is None:
            student_index = self.students[student] = len(self.students)
        if item is None:
            item_index = _NONE
        else:
            item_index = self.items.get(item)
            if item_index is None:
                item_index = self.items[item] = len(self.items)
        if skills:
            combo = self._combo_of_names.get(skills)
            if combo is None:
                combo = self._combo_of_names[skills] = self._combo(skills)
            if item is not None and item not in self.state.items:
                self.new_item_combos.setdefault(item_index, set()).add(combo)
        else:
            combo = _ITEM_SKILLS
            self.items_lending_skills.add(item_index)
        self.student_column.append(student_index)
        self.item_column.append(item_index)
        self.combo_column.append(combo)
        self.correct_column.append(1 if correct else 0)
        self.time_column.append(micros)
        self.attempt_column.append(_NONE if attempt is None else attempt)
        self.duration_column.append(math.nan if duration_s is None else duration_s)
        self.position_column.append(position)
        self.chain_column.append(chain)

    def check_sequence(
        self, *, items: Sequence[str] | None, skills: Sequence[tuple[str, ...]]
    ) -> tuple[int, str] | None:
        """(position, why) of the first answer of a sequence that cannot be imported, or None.

        The student is checked by :meth:`check_student`; a sequence has no times, attempts or
        durations, and every answer of a block file names a skill.
        """
        item_verdicts, skill_verdicts = self._item_verdicts, self._skill_verdicts
        for position, names in enumerate(skills):
            problem = None
            if items is not None:
                problem = item_verdicts.get(items[position], _UNSEEN)
                if problem is _UNSEEN:
                    problem = self._verdict("item", items[position])
            for name in names:
                if problem is not None:
                    break
                problem = skill_verdicts.get(name, _UNSEEN)
                if problem is _UNSEEN:
                    problem = self._verdict("skill", name)
            if problem is not None:
                return position, problem  # type: ignore[return-value]
        return None

    def stage_sequence(
        self,
        *,
        student: str,
        items: Sequence[str] | None,
        skills: Sequence[tuple[str, ...]],
        correct: Sequence[int],
        chains: Sequence[int],
    ) -> None:
        """Keep a student's sequence that passed :meth:`check_sequence`: answer ``n`` at
        :data:`SEQUENCE_EPOCH` + ``n`` seconds."""
        count = len(correct)
        student_index = self.students.get(student)
        if student_index is None:
            student_index = self.students[student] = len(self.students)
        combo_of_names, known_items = self._combo_of_names, self.state.items
        combos = array("i")
        for names in skills:
            combo = combo_of_names.get(names)
            if combo is None:
                combo = combo_of_names[names] = self._combo(names)
            combos.append(combo)
        if items is None:
            self.item_column.extend(array("i", [_NONE]) * count)
        else:
            numbers = self.items
            indexes = array("i")
            for position, item in enumerate(items):
                index = numbers.get(item)
                if index is None:
                    index = numbers[item] = len(numbers)
                indexes.append(index)
                if item not in known_items:
                    self.new_item_combos.setdefault(index, set()).add(combos[position])
            self.item_column.extend(indexes)
        self.student_column.extend(array("i", [student_index]) * count)
        self.combo_column.extend(combos)
        self.correct_column.extend(1 if flag else 0 for flag in correct)
        self.time_column.extend(
            range(_SEQUENCE_EPOCH_MICROS, _SEQUENCE_EPOCH_MICROS + count * 1_000_000, 1_000_000)
        )
        self.attempt_column.extend(array("q", [_NONE]) * count)
        self.duration_column.extend(array("d", [math.nan]) * count)
        self.position_column.extend(range(count))
        self.chain_column.extend(chains)

    def new_item_skills(self) -> dict[int, set[int]]:
        """Items the course lacks -> the numbers of every skill the input names for them."""
        combos = list(self.combos)
        return {
            item: {skill for combo in item_combos for skill in combos[combo]}
            for item, item_combos in self.new_item_combos.items()
        }


# --- reading the inputs -----------------------------------------------------------------------


class _Lines:
    """The input's lines, counted, remembering the last few for the report's ``raw`` column."""

    def __init__(self, handle: Iterable[str]):
        self._handle = handle
        self._recent: deque[str] = deque(maxlen=_RECENT_LINES)
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        try:
            for text in self._handle:
                self.count += 1
                self._recent.append(text)
                yield text
        except UnicodeDecodeError:
            raise _Unreadable(self.count + 1, "the file is not UTF-8 text") from None
        except (EOFError, OSError) as error:  # a truncated or corrupt .gz file
            raise _Unreadable(self.count + 1, f"the file cannot be read ({error})") from None

    def text(self, line: int) -> str:
        back = self.count - line
        if 0 <= back < len(self._recent):
            return self._recent[-1 - back].rstrip("\r\n")
        return ""


class _Rejecter:
    """Stops the import at the first bad row, or (skip_invalid) notes it and goes on."""

    def __init__(
        self, *, result: ImportResult, skip_invalid: bool, report: Any, field: str = "file"
    ):
        self.result = result
        self.skip_invalid = skip_invalid
        self.report = report
        self.field = field

    def __call__(self, line: int, reason: str, raw: Callable[[], str]) -> None:
        if not self.skip_invalid:
            raise ImportFailed(line, reason, field=self.field)
        rejection = Rejection(line=line, reason=reason, raw=raw())
        self.result.rejected += 1
        if len(self.result.rejections) < KEPT_REJECTIONS:
            self.result.rejections.append(rejection)
        if self.report is not None:
            self.report.writerow([rejection.line, rejection.reason, rejection.raw])


def _micros(moment: datetime) -> int:
    return (moment - UNIX_EPOCH) // _ONE_MICROSECOND


def _stage_csv(
    lines: _Lines, *, staging: _Staging, reject: _Rejecter, result: ImportResult
) -> None:
    from edu_dl.ml.kt.formats import FormatError, read_csv_answers

    try:
        for entry in read_csv_answers(lines):
            result.read += 1
            if isinstance(entry, FormatError):
                reject(entry.line, entry.reason, lambda line=entry.line: lines.text(line))
                continue
            problem = staging.check(
                student=entry.student,
                item=entry.item,
                skills=entry.skills,
                timestamp=entry.timestamp,
                attempt=entry.attempt,
                duration_s=entry.duration_s,
            )
            if problem is not None:
                reject(entry.line, problem, lambda line=entry.line: lines.text(line))
                continue
            staging.stage(
                student=entry.student,
                item=entry.item,
                skills=entry.skills,
                correct=entry.correct,
                micros=_micros(entry.timestamp),
                attempt=entry.attempt,
                duration_s=entry.duration_s,
            )
    except csv.Error as error:
        raise _Unreadable(lines.count, f"the file is not valid CSV ({error})") from None


def _normalised(text: str) -> str:
    return ",".join(token.strip() for token in text.split(",") if token.strip())


def _headers_are_lengths(content: Sequence[str], size: int) -> bool:
    """Whether every complete block among the file's first lines starts with its length."""
    blocks = [content[start : start + size] for start in range(0, len(content) - size + 1, size)]
    for block in blocks:
        header = _normalised(block[0]).split(",")
        flags = _normalised(block[-1]).split(",") if _normalised(block[-1]) else []
        if len(header) != 1 or not header[0].isdigit() or int(header[0]) != len(flags):
            return False
    return bool(blocks)


def _sequence_chain(
    items: Sequence[str] | None, skills: Sequence[tuple[str, ...]], correct: Sequence[int]
) -> list[int]:
    """For each position, a 64-bit hash of the answers up to and including it."""
    digest = b""
    chains = []
    for position, flag in enumerate(correct):
        item = "" if items is None else items[position]
        text = f"{item}\x1f{';'.join(skills[position])}\x1f{flag}"
        digest = hashlib.blake2b(digest + text.encode(), digest_size=8).digest()
        chains.append(int.from_bytes(digest, "big"))
    return chains


def _stage_blocks(
    lines: _Lines,
    *,
    format: str,
    akt_lines: int | None,
    staging: _Staging,
    reject: _Rejecter,
    result: ImportResult,
) -> None:
    from edu_dl.ml.kt.formats import FormatError, detect_akt_lines, read_blocks

    numbered = iter(lines)
    prefix: list[str] = []
    content: list[str] = []
    for text in numbered:
        prefix.append(text)
        if text.strip():
            content.append(text)
            if len(content) >= _DETECTION_LINES:
                break
    if not content:
        return  # an empty file holds no answers
    if format == "dkt":
        size = 3
    elif akt_lines is not None:
        size = akt_lines
    else:
        try:
            size = detect_akt_lines(prefix)
        except ValueError as error:
            raise _Unreadable(1, str(error)) from None
    first_block = "\n".join(_normalised(text) for text in content[:size])
    result.file_id = hashlib.sha256(first_block.encode()).hexdigest()[:12]
    by_length = format == "dkt" or _headers_are_lengths(content, size)
    skipped = " (the student's block is skipped)" if reject.skip_invalid else ""

    ordinal = 0
    for entry in read_blocks(chain(prefix, numbered), lines_per_student=size, on_error="yield"):
        ordinal += 1
        if isinstance(entry, FormatError):
            reject(entry.line, entry.reason, lambda line=entry.line: lines.text(line))
            continue
        block = entry
        raw = lambda line=block.first_line: lines.text(line)  # noqa: E731
        result.read += len(block.correct)
        header = _normalised(lines.text(block.first_line))
        # The reader takes a header equal to the block's length for the length; the file as a
        # whole decides (a student whose id happens to equal their number of answers).
        if block.student != f"#{ordinal}":
            student = block.student
        elif by_length:
            student = f"{result.file_id}#{ordinal}"
        else:
            student = header
        if by_length and student != f"{result.file_id}#{ordinal}":
            reject(
                block.first_line,
                (
                    f"a dkt block starts with its number of answers ({len(block.correct)}), "
                    if format == "dkt"
                    else "the blocks of this file start with their number of answers "
                    f"({len(block.correct)} here), "
                )
                + f"not {header!r}{skipped}",
                raw,
            )
            continue
        problem = staging.check_student(student)
        if problem is None:
            found = staging.check_sequence(items=block.items, skills=block.skills)
            if found is not None:
                problem = f"answer {found[0] + 1} of the block: {found[1]}"
        if problem is not None:
            reject(block.first_line, problem + skipped, raw)
            continue
        staging.stage_sequence(
            student=student,
            items=block.items,
            skills=block.skills,
            correct=block.correct,
            chains=_sequence_chain(block.items, block.skills, block.correct),
        )


def _record_values(record: Any) -> dict[str, Any] | str:
    """An API record as :meth:`_Staging.check` arguments, or why it cannot be read."""
    if not isinstance(record, Mapping):
        return "a record must be an object"
    unknown = sorted(str(name) for name in record if name not in RECORD_FIELDS)
    if unknown:
        return f"unknown field(s) {', '.join(unknown)}"
    student = record.get("student")
    if isinstance(student, int) and not isinstance(student, bool):
        student = str(student)
    if not isinstance(student, str) or not student.strip():
        return "student must be a non-empty id"
    item = record.get("item")
    if isinstance(item, int) and not isinstance(item, bool):
        item = str(item)
    if item is not None and not isinstance(item, str):
        return "item must be an id or null"
    skills = record.get("skills") or []
    if isinstance(skills, str):
        skills = skills.split(";")
    if not isinstance(skills, list) or not all(
        isinstance(s, str) or (isinstance(s, int) and not isinstance(s, bool)) for s in skills
    ):
        return "skills must be a list of ids"
    correct = record.get("correct")
    if not isinstance(correct, bool) and not (isinstance(correct, int) and correct in (0, 1)):
        return f"correct must be true or false (or 1 or 0), not {correct!r}"
    timestamp = record.get("timestamp")
    if isinstance(timestamp, str):
        text = timestamp.strip()
        try:
            timestamp = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            return f"timestamp {record['timestamp']!r} is not ISO 8601"
        if timezone.is_naive(timestamp):
            timestamp = timestamp.replace(
                tzinfo=UTC
            )  # as in csv files: a time without a zone is UTC
    if not isinstance(timestamp, datetime):
        return "timestamp must be an ISO 8601 time"
    return {
        "student": student.strip(),
        "item": (item.strip() or None) if item is not None else None,
        "skills": tuple(dict.fromkeys(str(s).strip() for s in skills if str(s).strip())),
        "correct": int(correct),
        "timestamp": timestamp,
        "attempt": record.get("attempt"),
        "duration_s": record.get("duration_s"),
    }


# --- writing ----------------------------------------------------------------------------------


def _username_for(*, slug: str, key: str, max_length: int) -> str:
    """``<slug>-<id>``, with characters a username cannot hold replaced by ``-``, cut to fit
    (:func:`_students_create` numbers a name that is taken)."""
    return f"{slug}-{_USERNAME_CHARACTERS.sub('-', key)}"[:max_length]


def _students_create(*, course: Course, keys: Sequence[str]) -> dict[str, int]:
    """New users, enrolled as students of ``course``, for the ids in ``keys``; their pks."""
    user_model = get_user_model()
    username_field = user_model.USERNAME_FIELD
    max_length = user_model._meta.get_field(username_field).max_length or 150
    wanted = {key: _username_for(slug=course.slug, key=key, max_length=max_length) for key in keys}
    names = list(wanted.values())
    taken: set[str] = set()
    for chunk in _chunks(names):
        taken.update(
            user_model.objects.filter(**{f"{username_field}__in": chunk}).values_list(
                username_field, flat=True
            )
        )
    usernames: dict[str, str] = {}
    for key in keys:
        name, number = wanted[key], 1
        while name in taken:
            number += 1
            suffix = f"-{number}"
            name = wanted[key][: max_length - len(suffix)] + suffix
            if user_model.objects.filter(**{username_field: name}).exists():
                taken.add(name)
        taken.add(name)
        usernames[key] = name
    users = []
    for key in keys:
        user = user_model(**{username_field: usernames[key]})
        user.set_unusable_password()
        users.append(user)
    user_model.objects.bulk_create(users, batch_size=1000)
    pks: dict[str, int] = {}
    for chunk in _chunks(list(usernames.values())):
        pks.update(
            user_model.objects.filter(**{f"{username_field}__in": chunk}).values_list(
                username_field, "pk"
            )
        )
    by_key = {key: pks[usernames[key]] for key in keys}
    Enrollment.objects.bulk_create(
        [
            Enrollment(user_id=pk, course=course, role=Enrollment.Role.STUDENT, external_id=key)
            for key, pk in by_key.items()
        ],
        batch_size=1000,
    )
    return by_key


@dataclass
class _Resolved:
    """Database ids for the numbers the staging arrays hold."""

    student_pks: list[int]
    item_pks: list[int]
    # per skill set: its skill pks (sorted), as JSON, and joined for keys
    combo_lists: list[list[int]]
    combo_json: list[str]
    combo_keys: list[str]
    # items whose skills some answer takes -> the number of that skill set
    item_combos: dict[int, int]


def _resolve(*, course: Course, staging: _Staging, result: ImportResult) -> _Resolved:
    """Find or create every student, skill and item the staged answers name."""
    state = staging.state
    student_pks = [0] * len(staging.students)
    missing_students = []
    for key, index in staging.students.items():
        match = state.student(key)
        if match is None:
            missing_students.append(key)
        else:
            student_pks[index] = match[0]
    if missing_students:
        created = _students_create(course=course, keys=missing_students)
        for key in missing_students:
            student_pks[staging.students[key]] = created[key]
    result.students_created = len(missing_students)

    skill_pks = [0] * len(staging.skills)
    missing_skills = []
    for key, index in staging.skills.items():
        pk = state.skill(key)
        if pk is None:
            missing_skills.append(key)
        else:
            skill_pks[index] = pk
    if missing_skills:
        Skill.objects.bulk_create(
            [Skill(course=course, name=key, external_id=key) for key in missing_skills],
            batch_size=1000,
        )
        created_skills = _pks_by_external_id(Skill, course, missing_skills)
        for key in missing_skills:
            skill_pks[staging.skills[key]] = created_skills[key]
    result.skills_created = len(missing_skills)

    item_keys = list(staging.items)
    item_pks = [state.items.get(key, 0) for key in item_keys]
    new_item_skills = staging.new_item_skills()
    if new_item_skills:
        skill_keys = list(staging.skills)
        result.items_created = history_items_create(
            course=course,
            skills_by_item={
                item_keys[index]: [
                    Skill(pk=skill_pks[s], course=course, name=skill_keys[s])
                    for s in sorted(skills)
                ]
                for index, skills in new_item_skills.items()
            },
        )
        new_keys = [item_keys[index] for index in new_item_skills]
        created_items = _pks_by_external_id(Item, course, new_keys)
        for index in new_item_skills:
            item_pks[index] = created_items[item_keys[index]]

    combo_lists = [sorted({skill_pks[s] for s in combo}) for combo in staging.combos]
    item_skill_lists: dict[int, list[int]] = {}
    lending = sorted(staging.items_lending_skills)
    for index in lending:
        if index in new_item_skills:
            item_skill_lists[index] = sorted(skill_pks[s] for s in new_item_skills[index])
        else:
            item_skill_lists[index] = []
    existing_lending = {item_pks[index]: index for index in lending if index not in new_item_skills}
    links = Item.skills.through.objects
    for chunk in _chunks(list(existing_lending)):
        for item_pk, skill_pk in links.filter(item_id__in=chunk).values_list("item_id", "skill_id"):
            item_skill_lists[existing_lending[item_pk]].append(skill_pk)
    item_combos: dict[int, int] = {}
    for index, pks in item_skill_lists.items():  # an item's skills become one more skill set
        item_combos[index] = len(combo_lists)
        combo_lists.append(sorted(pks))
    return _Resolved(
        student_pks=student_pks,
        item_pks=item_pks,
        combo_lists=combo_lists,
        combo_json=[json.dumps(pks) for pks in combo_lists],
        combo_keys=[".".join(map(str, pks)) for pks in combo_lists],
        item_combos=item_combos,
    )


def _external_id(
    sequences: bool,
    student_pk: int,
    item_pk: int | None,
    combo_key: str,
    micros: int,
    position: int,
    chain: int,
) -> str:
    """The interaction's idempotency key (see the module docstring)."""
    if sequences:
        return f"q:{student_pk}:{position}:{chain:016x}"
    what = str(item_pk) if item_pk is not None else f"s{combo_key}"
    key = f"t:{student_pk}:{what}:{micros}"
    if len(key) > ID_MAX_LENGTH:  # an answer without an item, tagged with very many skills
        what = "h" + hashlib.sha256(what.encode()).hexdigest()[:32]
        key = f"t:{student_pk}:{what}:{micros}"
    return key


def _answers(
    staging: _Staging, resolved: _Resolved, *, only: bytearray | None = None, want: int = 1
) -> Iterator[tuple[int, int | None, int, bool, int, str, int | None, float | None]]:
    """(student pk, item pk, skill set, correct, micros, key, attempt, duration) per answer,
    for the answers whose student's flag in ``only`` equals ``want`` (all when ``only`` is None).
    The skill set indexes ``resolved.combo_json`` and ``resolved.combo_lists``.
    """
    student_pks, item_pks = resolved.student_pks, resolved.item_pks
    combo_keys, item_combos = resolved.combo_keys, resolved.item_combos
    sequences = staging.sequences
    columns = zip(
        staging.student_column,
        staging.item_column,
        staging.combo_column,
        staging.correct_column,
        staging.time_column,
        staging.attempt_column,
        staging.duration_column,
        staging.position_column,
        staging.chain_column,
        strict=True,
    )
    for student, item, combo, correct, micros, attempt, duration, position, chain_ in columns:
        if only is not None and only[student] != want:
            continue
        student_pk = student_pks[student]
        item_pk = item_pks[item] if item != _NONE else None
        if combo == _ITEM_SKILLS:
            combo = item_combos[item]
        key = _external_id(
            sequences, student_pk, item_pk, combo_keys[combo], micros, position, chain_
        )
        yield (
            student_pk,
            item_pk,
            combo,
            correct == 1,
            micros,
            key,
            None if attempt == _NONE else attempt,
            None if duration != duration else duration,  # NaN: none
        )


def _insert_bulk(*, course: Course, source: str, staging: _Staging, resolved: _Resolved) -> int:
    """Any database: ``bulk_create(ignore_conflicts=True)`` in batches; how many were new."""
    stored = Interaction.objects.filter(course=course, source=source)
    before = stored.count()
    batch: list[Interaction] = []
    for student_pk, item_pk, combo, correct, micros, key, attempt, duration in _answers(
        staging, resolved
    ):
        batch.append(
            Interaction(
                course=course,
                student_id=student_pk,
                item_id=item_pk,
                skill_ids=list(resolved.combo_lists[combo]),
                correct=correct,
                timestamp=UNIX_EPOCH + timedelta(microseconds=micros),
                source=source,
                external_id=key,
                attempt=attempt,
                duration_s=duration,
            )
        )
        if len(batch) >= _BATCH:
            Interaction.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        Interaction.objects.bulk_create(batch, ignore_conflicts=True)
    return stored.count() - before


_COPY_FIELDS = (
    "course",
    "student",
    "item",
    "skill_ids",
    "correct",
    "timestamp",
    "source",
    "external_id",
    "attempt",
    "duration_s",
    "created_at",
)


def _copy_text(
    *,
    course: Course,
    source: str,
    staging: _Staging,
    resolved: _Resolved,
    created_at: datetime,
    only: bytearray,
    want: int,
) -> Iterator[str]:
    """The answers as COPY text, a few thousand lines per string. Every value is a number, a
    time, JSON of numbers or a key built here, so none needs escaping."""
    head = f"{course.pk}\t"
    middle = f"\t{source}\t"
    tail = f"\t{created_at.isoformat()}\n"
    combo_json = resolved.combo_json
    lines: list[str] = []
    for student_pk, item_pk, combo, correct, micros, key, attempt, duration in _answers(
        staging, resolved, only=only, want=want
    ):
        moment = (UNIX_EPOCH + timedelta(microseconds=micros)).isoformat()
        item_text = _COPY_NULL if item_pk is None else item_pk
        attempt_text = _COPY_NULL if attempt is None else attempt
        duration_text = _COPY_NULL if duration is None else repr(duration)
        lines.append(
            f"{head}{student_pk}\t{item_text}\t{combo_json[combo]}\t{'t' if correct else 'f'}\t"
            f"{moment}{middle}{key}\t{attempt_text}\t{duration_text}{tail}"
        )
        if len(lines) >= _COPY_CHUNK:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def _copy(cursor: Any, sql: str, chunks: Iterable[str]) -> None:
    with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
        for chunk in chunks:
            copy.write(chunk)


def _insert_postgresql(
    *, course: Course, source: str, staging: _Staging, resolved: _Resolved
) -> int:
    """PostgreSQL: COPY (see the module docstring); how many answers were new."""
    quote = connection.ops.quote_name
    meta = Interaction._meta
    table = quote(meta.db_table)
    columns = ", ".join(quote(meta.get_field(name).column) for name in _COPY_FIELDS)
    student_column = quote(meta.get_field("student").column)
    course_column = quote(meta.get_field("course").column)
    source_column = quote(meta.get_field("source").column)
    key_column = quote(meta.get_field("external_id").column)
    created_at = timezone.now()
    student_pks = sorted(set(resolved.student_pks))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT {student_column} FROM {table} "  # noqa: S608 (names, not data)
            f"WHERE {course_column} = %s AND {source_column} = %s AND {student_column} = ANY(%s)",
            [course.pk, source, student_pks],
        )
        with_history = {row[0] for row in cursor.fetchall()}
        # 1: straight into the table; 0: through the staging table
        fresh = bytearray(0 if pk in with_history else 1 for pk in resolved.student_pks)
        copied = 0
        if any(fresh):
            copied = sum(1 for index in range(len(staging)) if fresh[staging.student_column[index]])
            text = _copy_text(
                course=course,
                source=source,
                staging=staging,
                resolved=resolved,
                created_at=created_at,
                only=fresh,
                want=1,
            )
            try:
                with transaction.atomic():
                    _copy(cursor, f"COPY {table} ({columns}) FROM STDIN", text)
            except IntegrityError:
                # A key repeated inside the input, or written meanwhile by another writer.
                copied = 0
                fresh = bytearray(len(fresh))
        if copied == len(staging):
            return copied
        cursor.execute("DROP TABLE IF EXISTS edu_dl_import_staging")
        cursor.execute(
            f"CREATE TEMPORARY TABLE edu_dl_import_staging ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {columns} FROM {table} WITH NO DATA"
        )
        text = _copy_text(
            course=course,
            source=source,
            staging=staging,
            resolved=resolved,
            created_at=created_at,
            only=fresh,
            want=0,
        )
        _copy(cursor, f"COPY edu_dl_import_staging ({columns}) FROM STDIN", text)
        cursor.execute("ANALYZE edu_dl_import_staging")  # a temporary table has no statistics
        # The anti-join skips stored answers faster than ON CONFLICT alone (a re-import is all
        # conflicts); ON CONFLICT still covers keys repeated in the input and other writers.
        cursor.execute(
            f"INSERT INTO {table} ({columns}) "  # noqa: S608
            f"SELECT {columns} FROM edu_dl_import_staging AS staged WHERE NOT EXISTS ("
            f"SELECT 1 FROM {table} AS stored WHERE stored.{course_column} = %s "
            f"AND stored.{source_column} = %s AND stored.{key_column} = staged.{key_column} "
            f"AND stored.{key_column} <> '') ON CONFLICT DO NOTHING",
            [course.pk, source],
        )
        inserted = cursor.rowcount
        cursor.execute("DROP TABLE edu_dl_import_staging")
    return copied + inserted


def _uses_copy() -> bool:
    """Whether the database takes PostgreSQL's COPY (tests switch it off to try the other way)."""
    return connection.vendor == "postgresql"


def _write(*, course: Course, source: str, staging: _Staging, result: ImportResult) -> None:
    resolved = _resolve(course=course, staging=staging, result=result)
    if not len(staging):
        return
    insert = _insert_postgresql if _uses_copy() else _insert_bulk
    result.imported = insert(course=course, source=source, staging=staging, resolved=resolved)
    result.already_present = len(staging) - result.imported


def _lock_course(course: Course) -> None:
    """One import per course at a time (PostgreSQL; SQLite writes one at a time anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, course.pk % 2**31]
            )


def _check_source(source: str) -> None:
    if source not in Interaction.Source.values:
        raise ValidationFailed(
            f"source {source!r} is not one of {', '.join(Interaction.Source.values)}",
            field="source",
        )


def _decoded(handle: Iterable[bytes]) -> Iterator[str]:
    # Line by line rather than through a TextIOWrapper, so that a byte that is not UTF-8 is
    # reported on its own line (a wrapper decodes blocks of 8 KB ahead of the reader).
    for raw in handle:
        yield raw.decode("utf-8")


@contextlib.contextmanager
def _input_lines(path_or_handle: str | os.PathLike[str] | IO[Any]) -> Iterator[Iterable[str]]:
    """The lines of a path (``.gz`` read compressed) or of an open text or binary file."""
    if isinstance(path_or_handle, str | os.PathLike):
        path = Path(path_or_handle)
        if not path.is_file():
            raise ValidationFailed(f"file {path} does not exist", field="path")
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            handle = opener(path, "rb")
        except OSError as error:
            raise ValidationFailed(
                f"file {path} cannot be read: {error.strerror or error}", field="path"
            ) from error
        with handle:
            yield _decoded(handle)
        return
    handle = path_or_handle
    if isinstance(handle, io.RawIOBase | io.BufferedIOBase) or "b" in str(
        getattr(handle, "mode", "")
    ):
        yield _decoded(handle)
        return
    yield handle


@contextlib.contextmanager
def _report_writer(report_path: Path | None) -> Iterator[Any]:
    if report_path is None:
        yield None
        return
    try:
        file = open(report_path, "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as error:
        raise ValidationFailed(
            f"the report {report_path} cannot be written: {error.strerror or error}",
            field="report_path",
        ) from error
    with file:
        writer = csv.writer(file)
        writer.writerow(REPORT_COLUMNS)
        yield writer


def interactions_import(
    *,
    course: Course,
    path_or_handle: str | os.PathLike[str] | IO[Any],
    format: str,
    akt_lines: int | None = None,
    skip_invalid: bool = False,
    report_path: str | os.PathLike[str] | None = None,
    source: str = Interaction.Source.IMPORT,
    now: datetime | None = None,
) -> ImportResult:
    """Import the answer history in a ``csv``, ``akt`` or ``dkt`` file into ``course``.

    ``path_or_handle`` is a path (``.gz`` is read compressed) or an open file. ``akt_lines``
    (3 or 4) says how many lines an akt student block has, when the file cannot show it.
    Without ``skip_invalid`` the first bad row raises :class:`ImportFailed` (its line and
    reason) and nothing is written; with it the valid rows are imported and the refused ones
    written to ``report_path`` (``line,reason,raw``) and kept in the result. ``now`` is the
    time "in the future" is judged against (default: the present). Importing the same answers
    again adds nothing. See the module docstring for the rules.
    """
    if format not in FORMATS:
        raise ValidationFailed(
            f"format {format!r} is not one of {', '.join(FORMATS)}", field="format"
        )
    if akt_lines is not None and (format != "akt" or akt_lines not in (3, 4)):
        raise ValidationFailed(
            "akt_lines is 3 or 4, and applies to the akt format only", field="akt_lines"
        )
    if report_path is not None and not skip_invalid:
        raise ValidationFailed(
            "a report is written only when invalid rows are skipped", field="report_path"
        )
    _check_source(source)
    result = ImportResult(report_path=Path(report_path) if report_path is not None else None)
    with (
        _input_lines(path_or_handle) as handle,
        _report_writer(result.report_path) as report,
        transaction.atomic(),
    ):
        _lock_course(course)
        staging = _Staging(
            course=course,
            state=_CourseState(course),
            now=now or timezone.now(),
            sequences=format != "csv",
        )
        reject = _Rejecter(result=result, skip_invalid=skip_invalid, report=report)
        lines = _Lines(handle)
        from edu_dl.ml.kt.formats import FormatError

        try:
            if format == "csv":
                _stage_csv(lines, staging=staging, reject=reject, result=result)
            else:
                _stage_blocks(
                    lines,
                    format=format,
                    akt_lines=akt_lines,
                    staging=staging,
                    reject=reject,
                    result=result,
                )
        except (FormatError, _Unreadable) as error:  # the whole file is unusable
            raise ImportFailed(error.line, error.reason) from None
        _write(course=course, source=source, staging=staging, result=result)
    return result


def interactions_import_records(
    *,
    course: Course,
    records: Iterable[Mapping[str, Any]],
    skip_invalid: bool = False,
    source: str = Interaction.Source.API,
    now: datetime | None = None,
) -> ImportResult:
    """Import answers given as records (the API's bulk endpoint), by the rules of csv rows.

    Each record has the csv columns as fields: ``student`` (an id), ``item`` (an id or null),
    ``skills`` (a list of ids, or one text with ``;`` between them), ``correct`` (true/false or
    1/0), ``timestamp`` (ISO 8601; without a zone it is UTC; or an aware datetime), and
    optionally ``attempt`` and ``duration_s``. A refused record is reported by its 1-based
    position, the line of an NDJSON body; without ``skip_invalid`` the first one raises
    :class:`ImportFailed` and nothing is written, with it the rest are imported and the refused
    ones are in ``result.rejections`` (the first :data:`KEPT_REJECTIONS`).
    """
    _check_source(source)
    result = ImportResult()
    with transaction.atomic():
        _lock_course(course)
        staging = _Staging(
            course=course, state=_CourseState(course), now=now or timezone.now(), sequences=False
        )
        reject = _Rejecter(result=result, skip_invalid=skip_invalid, report=None, field="records")
        for number, record in enumerate(records, start=1):
            result.read += 1
            values = _record_values(record)
            problem = (
                values
                if isinstance(values, str)
                else staging.check(
                    student=values["student"],
                    item=values["item"],
                    skills=values["skills"],
                    timestamp=values["timestamp"],
                    attempt=values["attempt"],
                    duration_s=values["duration_s"],
                )
            )
            if problem is not None:
                reject(number, problem, lambda record=record: json.dumps(record, default=str))
                continue
            assert isinstance(values, dict)
            staging.stage(
                student=values["student"],
                item=values["item"],
                skills=values["skills"],
                correct=values["correct"],
                micros=_micros(values["timestamp"]),
                attempt=values["attempt"],
                duration_s=values["duration_s"],
            )
        _write(course=course, source=source, staging=staging, result=result)
    return result
