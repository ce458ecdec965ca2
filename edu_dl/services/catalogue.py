"""The study catalogue: changing resources, taking them out of use, importing them from CSV.

Importing a catalogue
---------------------
:func:`resources_import` reads a CSV file whose header names its columns, in any order:
``title`` and ``kind`` are required, ``external_id``, ``url``, ``body``, ``skills``,
``difficulty``, ``minutes``, ``language`` and ``active`` may be there; any other column is
refused (a misspelt ``dificulty`` would otherwise be dropped without a word).

- ``skills`` holds the skills the resource teaches, separated by ``;``: each is a skill of the
  course named by its external id or its name, optionally followed by ``:weight`` (a positive
  number, 1 when left out): ``Slope;Intercept:0.5``. A skill whose name itself ends in ``:`` and
  a number is found by its whole name first.
- ``active`` is ``true``/``false`` (also ``yes``/``no``, ``1``/``0``).
- An empty ``difficulty``, ``minutes``, ``language`` or ``active`` cell means "not given": the
  default for a new resource (0.5, 10, ``en``, active), the stored value for an existing one. An
  empty ``url``, ``body`` or ``skills`` cell is a value: no address, no text, no skills.

A row whose ``external_id`` is a resource of the course updates that resource (the columns the
file has, and only when a value differs); any other row creates one. A row without an
``external_id`` creates a new resource every time the file is imported: give ids to rows that
will be imported again.

All or nothing: every row is checked (each column by the rules of
:func:`~edu_dl.services.courses.resource_create`, and no ``external_id`` twice in the file)
before anything is written. If any row is wrong, :class:`RowsRejected` lists every problem
(line, column, reason) and nothing is written.

Lines are the file's lines, the header being line 1, so they are what an editor or a
spreadsheet shows (a quoted value spanning several lines counts from its row's first line).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypedDict

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from edu_dl.models import Course, Resource, ResourceSkill, Skill

# One set of field rules for resource_create, resource_update and the import.
from edu_dl.services.courses import _choice, _number, _skills_of_course, _text
from edu_dl.services.errors import Conflict, ValidationFailed
from edu_dl.services.importing import ImportFailed, Rejection

if TYPE_CHECKING:
    from typing_extensions import Unpack

REQUIRED_COLUMNS = ("title", "kind")
OPTIONAL_COLUMNS = (
    "external_id",
    "url",
    "body",
    "skills",
    "difficulty",
    "minutes",
    "language",
    "active",
)
PROBLEM_REPORT_COLUMNS = ("line", "column", "reason", "raw")
# The error's message lists this many problems; the exception and the report hold all of them.
PROBLEMS_IN_MESSAGE = 20

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
# Where a column's cell goes on the model (the others have the column's name).
_FIELD_OF_COLUMN = {"active": "is_active"}
_BLANK_MEANS_NOT_GIVEN = frozenset({"difficulty", "minutes", "language", "active"})


# --- rows refused -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RowProblem(Rejection):
    """A refused row of an imported file: its line, the column at fault, why, the row's text."""

    column: str = ""

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.reason}"


class RowsRejected(ImportFailed):
    """Rows of an imported file broke the rules; nothing was written.

    ``problems`` holds every problem found, in the file's order; the message names the first
    :data:`PROBLEMS_IN_MESSAGE`. ``line`` and ``reason`` are the first problem's.
    """

    def __init__(self, problems: Sequence[RowProblem], *, field: str = "file"):
        problems = list(problems)
        if not problems:
            raise ValueError("RowsRejected needs at least one problem")
        shown = "; ".join(str(problem) for problem in problems[:PROBLEMS_IN_MESSAGE])
        more = len(problems) - PROBLEMS_IN_MESSAGE
        message = f"{_problems(len(problems))} in the file, nothing was imported: {shown}" + (
            f"; and {more} more" if more > 0 else ""
        )
        # ImportFailed's message is one line's; this one lists them all.
        ValidationFailed.__init__(
            self,
            message,
            field=field,
            extra={
                "problems": [
                    {"line": problem.line, "column": problem.column, "reason": problem.reason}
                    for problem in problems
                ]
            },
        )
        self.line = problems[0].line
        self.reason = problems[0].reason
        self.problems = problems


def _problems(count: int) -> str:
    return f"{count} problem{'' if count == 1 else 's'}"


# --- reading CSV files ------------------------------------------------------------------------


def _decoded(handle: Iterable[bytes]) -> Iterator[str]:
    # Line by line rather than through a TextIOWrapper, so that a byte that is not UTF-8 is
    # reported on its own line (a wrapper decodes blocks of 8 KB ahead of the reader).
    for number, raw in enumerate(handle, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ImportFailed(number, "the file is not UTF-8 text") from None
        yield text.removeprefix("\ufeff") if number == 1 else text


@contextlib.contextmanager
def _text_lines(path_or_handle: str | os.PathLike[str] | IO[Any]) -> Iterator[Iterable[str]]:
    """The lines of a path, or of an open text or binary file (UTF-8; a byte order mark is
    dropped). An open file is left open."""
    if isinstance(path_or_handle, str | os.PathLike):
        path = Path(path_or_handle)
        if not path.is_file():
            raise ValidationFailed(f"file {path} does not exist", field="path")
        try:
            handle = open(path, "rb")  # noqa: SIM115
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


def _records(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of each non-blank CSV record."""
    reader = csv.reader(lines)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ImportFailed(reader.line_num, f"the CSV cannot be read: {error}") from None
        line, start = start, reader.line_num + 1
        if any(cell.strip() for cell in cells):
            yield line, cells


@contextlib.contextmanager
def csv_table(
    path_or_handle: str | os.PathLike[str] | IO[Any],
) -> Iterator[tuple[list[str], Iterator[tuple[int, list[str]]]]]:
    """The header (names stripped) and the (line, cells) rows of a CSV file.

    ``path_or_handle`` is a path or an open text or binary file; UTF-8, with or without a byte
    order mark. Blank lines are skipped. Undecodable text or broken quoting raises
    :class:`~edu_dl.services.importing.ImportFailed` with its line. Shared by the catalogue and
    the prerequisite imports.
    """
    with _text_lines(path_or_handle) as lines:
        records = _records(lines)
        first = next(records, None)
        if first is None:
            raise ImportFailed(1, "the file is empty: it needs a header line")
        header = [name.strip().lstrip("\ufeff").strip() for name in first[1]]
        yield header, records


def row_text(cells: Sequence[str]) -> str:
    """A row's cells as one CSV line (for reports)."""
    text = io.StringIO()
    csv.writer(text, lineterminator="").writerow(cells)
    return text.getvalue()


# --- the rules of a resource's fields ---------------------------------------------------------
# Each takes a value and returns it checked, or raises ValidationFailed with the message
# resource_create gives.


def _title(value: Any) -> str:
    return _text(value, field="title", max_length=200)


def _kind(value: Any) -> str:
    return _choice(value, field="kind", choices=Resource.Kind.values)


def _url(value: Any) -> str:
    url = _text(value, field="url", max_length=500, required=False)
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError as error:
            raise ValidationFailed(f"url {url!r} is not an http(s) address", field="url") from error
    return url


def _body(value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationFailed("body must be text", field="body")
    return value


def _difficulty(value: Any) -> float:
    difficulty = _number(value, field="difficulty")
    if not 0 <= difficulty <= 1:
        raise ValidationFailed(
            f"difficulty must be between 0 and 1, not {difficulty:g}", field="difficulty"
        )
    return difficulty


def _minutes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationFailed("minutes must be a whole number of at least 1", field="minutes")
    return value


def _language(value: Any) -> str:
    return _text(value, field="language", max_length=16)


def _external_id(value: Any) -> str:
    return _text(value, field="external_id", max_length=255, required=False)


def _is_active(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationFailed("is_active must be true or false", field="is_active")
    return value


_FIELD_RULES = {
    "title": _title,
    "kind": _kind,
    "url": _url,
    "body": _body,
    "difficulty": _difficulty,
    "minutes": _minutes,
    "language": _language,
    "external_id": _external_id,
    "is_active": _is_active,
}


def _weights(skills: Any, *, course: Course) -> dict[Skill, float]:
    """Skill -> positive weight, from a list (each weighted 1) or a mapping."""
    weights = dict(skills) if isinstance(skills, Mapping) else dict.fromkeys(skills, 1.0)
    _skills_of_course(weights, course=course, field="skills")
    for skill, weight in weights.items():
        if _number(weight, field="skills") <= 0:
            raise ValidationFailed(
                f"the weight of skill {skill.name!r} must be positive", field="skills"
            )
    return {skill: float(weight) for skill, weight in weights.items()}


def _external_id_free(*, course: Course, external_id: str, resource: Resource | None) -> None:
    others = Resource.objects.filter(course=course, external_id=external_id)
    if resource is not None:
        others = others.exclude(pk=resource.pk)
    if external_id and others.exists():
        raise Conflict(
            f"course {course.slug!r} already has a resource with external id {external_id!r}",
            field="external_id",
        )


# --- changing one resource --------------------------------------------------------------------


class ResourceChanges(TypedDict, total=False):
    """The fields :func:`resource_update` can change (those given are changed)."""

    title: str
    kind: str
    url: str
    body: str
    skills: Mapping[Skill, float] | Sequence[Skill]
    difficulty: float
    minutes: int
    language: str
    external_id: str
    is_active: bool


@transaction.atomic
def resource_update(*, resource: Resource, **fields: Unpack[ResourceChanges]) -> Resource:
    """Change the given fields of ``resource``, by the rules of ``resource_create``.

    ``skills`` (a list, each weighted 1, or a mapping of skill to a positive weight) replaces
    the skills the resource teaches. Nothing is written when a field is wrong. The course of a
    resource does not change. Returns the resource, refreshed.
    """
    unknown = sorted(set(fields) - set(ResourceChanges.__annotations__))
    if unknown:
        raise TypeError(f"resource_update() got fields it cannot change: {', '.join(unknown)}")
    given: dict[str, Any] = dict(fields)
    changes = {name: rule(given[name]) for name, rule in _FIELD_RULES.items() if name in given}
    weights = _weights(given["skills"], course=resource.course) if "skills" in given else None
    if "external_id" in changes:
        _external_id_free(
            course=resource.course, external_id=changes["external_id"], resource=resource
        )
    if changes:
        for name, value in changes.items():
            setattr(resource, name, value)
        resource.save(update_fields=list(changes))
    if weights is not None:
        ResourceSkill.objects.filter(resource=resource).delete()
        ResourceSkill.objects.bulk_create(
            ResourceSkill(resource=resource, skill=skill, weight=weight)
            for skill, weight in weights.items()
        )
    return resource


def _set_active(resource: Resource, active: bool) -> Resource:
    if resource.is_active != active:
        Resource.objects.filter(pk=resource.pk).update(is_active=active)
        resource.is_active = active
    return resource


@transaction.atomic
def resource_deactivate(*, resource: Resource) -> Resource:
    """Take ``resource`` out of use: it is no longer suggested to students.

    It keeps its skills and can be reactivated; deactivating an inactive resource changes
    nothing.
    """
    return _set_active(resource, False)


@transaction.atomic
def resource_reactivate(*, resource: Resource) -> Resource:
    """Put a deactivated ``resource`` back in use; an active one is left as it is."""
    return _set_active(resource, True)


# --- importing a catalogue --------------------------------------------------------------------


@dataclass
class ResourceImportResult:
    """What :func:`resources_import` read and did: ``read`` = ``created`` + ``updated`` +
    ``unchanged``."""

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    report_path: Path | None = None


@dataclass
class _Row:
    line: int
    # The model fields the row gives, checked (a field left out is not given).
    values: dict[str, Any]
    # Skill pk -> weight; None when the file has no skills column.
    weights: dict[int, float] | None


class CourseSkillIndex:
    """The course's skills, found by external id or else by name (what imported files name)."""

    def __init__(self, course: Course):
        self.by_external_id: dict[str, int] = {}
        self.by_name: dict[str, int] = {}
        self.names: dict[int, str] = {}
        for pk, name, external_id in Skill.objects.filter(course=course).values_list(
            "pk", "name", "external_id"
        ):
            self.by_name[name] = pk
            self.names[pk] = name
            if external_id:
                self.by_external_id[external_id] = pk

    def find(self, key: str) -> int | None:
        """The pk of the skill whose external id is ``key``, else whose name is; None if none."""
        pk = self.by_external_id.get(key)
        return pk if pk is not None else self.by_name.get(key)


def _parse_skills(cell: str, skills: CourseSkillIndex) -> tuple[dict[int, float], list[str]]:
    """Skill pk -> weight of a ``skills`` cell, and what is wrong with it."""
    weights: dict[int, float] = {}
    problems: list[str] = []
    for token in (part.strip() for part in cell.split(";")):
        if not token:
            continue
        key, weight = token, 1.0
        pk = skills.find(key)
        if pk is None and ":" in token:
            name, _, weight_text = (part.strip() for part in token.rpartition(":"))
            if skills.find(name) is not None or _is_number(weight_text):
                key, pk = name, skills.find(name)
                try:
                    weight = float(weight_text)
                except ValueError:
                    problems.append(f"the weight of skill {key!r} is not a number: {weight_text!r}")
                    continue
                if not (math.isfinite(weight) and weight > 0):
                    problems.append(f"the weight of skill {key!r} must be positive")
                    continue
        if pk is None:
            problems.append(
                f"unknown skill {key!r} (no skill of the course has this name or external id)"
            )
        elif pk in weights:
            problems.append(f"skill {key!r} is named twice")
        else:
            weights[pk] = weight
    return weights, problems


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cell_value(column: str, cell: str) -> Any:
    """A cell as the value its field's rule checks; raises ValidationFailed when it is not."""
    if column == "difficulty":
        try:
            return _difficulty(float(cell))
        except ValueError:
            raise ValidationFailed(
                f"difficulty must be a number, not {cell!r}", field="difficulty"
            ) from None
    if column == "minutes":
        try:
            return _minutes(int(cell))
        except ValueError:
            raise ValidationFailed(
                f"minutes must be a whole number of at least 1, not {cell!r}", field="minutes"
            ) from None
    if column == "active":
        word = cell.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ValidationFailed(
                f"active must be true or false (or yes/no, 1/0), not {cell!r}", field="active"
            )
        return word in _TRUE
    if column == "kind":
        return _kind(cell.strip())
    return _FIELD_RULES[column](cell)


def _check_header(header: list[str]) -> None:
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    unknown = [name for name in header if name not in known]
    repeated = sorted({name for name in header if header.count(name) > 1})
    reasons = []
    if missing:
        reasons.append(f"the header lacks the column(s) {', '.join(missing)}")
    if unknown:
        reasons.append(
            f"unknown column(s) {', '.join(repr(name) for name in unknown)} "
            f"(the columns are {', '.join(known)})"
        )
    if repeated:
        reasons.append(f"column(s) {', '.join(repeated)} appear more than once")
    if reasons:
        raise ImportFailed(1, "; ".join(reasons))


def _parse_row(
    line: int, cells: list[str], *, header: list[str], skills: CourseSkillIndex
) -> tuple[_Row, list[RowProblem]]:
    raw = row_text(cells)
    problems: list[RowProblem] = []
    if len(cells) != len(header):
        problems.append(
            RowProblem(
                line=line,
                column="row",
                reason=f"the row has {len(cells)} cells; the header has {len(header)}",
                raw=raw,
            )
        )
        return _Row(line=line, values={}, weights=None), problems
    row = _Row(line=line, values={}, weights=None)
    for column, cell in zip(header, cells, strict=True):
        if column == "skills":
            row.weights, reasons = _parse_skills(cell, skills)
            problems.extend(
                RowProblem(line=line, column=column, reason=reason, raw=raw) for reason in reasons
            )
            continue
        if column in _BLANK_MEANS_NOT_GIVEN and not cell.strip():
            continue
        try:
            row.values[_FIELD_OF_COLUMN.get(column, column)] = _cell_value(column, cell)
        except ValidationFailed as error:
            problems.append(RowProblem(line=line, column=column, reason=error.message, raw=raw))
    return row, problems


def _repeated_external_ids(rows: Iterable[_Row], raws: Mapping[int, str]) -> list[RowProblem]:
    first_line: dict[str, int] = {}
    problems = []
    for row in rows:
        external_id = row.values.get("external_id", "")
        if not external_id:
            continue
        if external_id in first_line:
            problems.append(
                RowProblem(
                    line=row.line,
                    column="external_id",
                    reason=f"external_id {external_id!r} is also on line {first_line[external_id]}",
                    raw=raws[row.line],
                )
            )
        else:
            first_line[external_id] = row.line
    return problems


def _write_report(report_path: Path | None, problems: Sequence[RowProblem]) -> None:
    if report_path is None:
        return
    with open(report_path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(PROBLEM_REPORT_COLUMNS)
        writer.writerows(
            (problem.line, problem.column, problem.reason, problem.raw) for problem in problems
        )


def _check_report_path(report_path: Path | None) -> None:
    """Fail before reading when the report cannot be written (it is written at the end)."""
    if report_path is None:
        return
    try:
        with open(report_path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise ValidationFailed(
            f"the report {report_path} cannot be written: {error.strerror or error}",
            field="report_path",
        ) from error


def _store(
    *, course: Course, rows: list[_Row], has_skills_column: bool, result: ResourceImportResult
) -> None:
    """Create, update or leave each checked row's resource, in bulk."""
    existing = {
        resource.external_id: resource
        for resource in Resource.objects.filter(course=course).exclude(external_id="")
    }
    stored_weights: dict[int, dict[int, float]] = {}
    if has_skills_column:
        for resource_id, skill_id, weight in ResourceSkill.objects.filter(
            resource__course=course
        ).values_list("resource_id", "skill_id", "weight"):
            stored_weights.setdefault(resource_id, {})[skill_id] = weight
    new: list[tuple[Resource, dict[int, float]]] = []
    changed: list[Resource] = []
    changed_fields: set[str] = set()
    relinked: dict[int, dict[int, float]] = {}
    for row in rows:
        resource = existing.get(row.values.get("external_id", ""))
        if resource is None:
            new.append((Resource(course=course, **row.values), row.weights or {}))
            continue
        differing = {
            name: value for name, value in row.values.items() if getattr(resource, name) != value
        }
        weights_differ = (
            row.weights is not None and stored_weights.get(resource.pk, {}) != row.weights
        )
        if not differing and not weights_differ:
            result.unchanged += 1
            continue
        result.updated += 1
        if differing:
            for name, value in differing.items():
                setattr(resource, name, value)
            changed.append(resource)
            changed_fields.update(differing)
        if weights_differ:
            assert row.weights is not None
            relinked[resource.pk] = row.weights
    created = Resource.objects.bulk_create([resource for resource, _ in new], batch_size=500)
    result.created = len(created)
    if changed:
        Resource.objects.bulk_update(changed, sorted(changed_fields), batch_size=500)
    ResourceSkill.objects.filter(resource_id__in=list(relinked)).delete()
    links = [
        ResourceSkill(resource_id=resource.pk, skill_id=skill_id, weight=weight)
        for resource, (_, weights) in zip(created, new, strict=True)
        for skill_id, weight in weights.items()
    ]
    links += [
        ResourceSkill(resource_id=resource_id, skill_id=skill_id, weight=weight)
        for resource_id, weights in relinked.items()
        for skill_id, weight in weights.items()
    ]
    ResourceSkill.objects.bulk_create(links, batch_size=1000)


@transaction.atomic
def resources_import(
    *,
    course: Course,
    path_or_handle: str | os.PathLike[str] | IO[Any],
    report_path: str | os.PathLike[str] | None = None,
) -> ResourceImportResult:
    """Create and update ``course``'s resources from a CSV file; see the module docstring.

    ``path_or_handle`` is a path or an open text or binary file. When a row is wrong,
    :class:`RowsRejected` lists every problem and nothing is written; ``report_path``, when
    given, receives the problems as ``line,column,reason,raw`` (just the header when there are
    none). A header that lacks ``title`` or ``kind`` or has a column not listed above raises
    :class:`~edu_dl.services.importing.ImportFailed` (line 1).
    """
    report = Path(report_path) if report_path is not None else None
    _check_report_path(report)
    result = ResourceImportResult(report_path=report)
    skills = CourseSkillIndex(course)
    rows: list[_Row] = []
    raws: dict[int, str] = {}
    problems: list[RowProblem] = []
    try:
        with csv_table(path_or_handle) as (header, records):
            _check_header(header)
            for line, cells in records:
                result.read += 1
                row, row_problems = _parse_row(line, cells, header=header, skills=skills)
                rows.append(row)
                raws[line] = row_text(cells)
                problems.extend(row_problems)
    except ImportFailed as error:  # the file as a whole is unusable
        _write_report(report, [RowProblem(line=error.line, column="file", reason=error.reason)])
        raise
    problems.extend(_repeated_external_ids(rows, raws))
    problems.sort(key=lambda problem: problem.line)  # stable: a row's columns stay in order
    _write_report(report, problems)
    if problems:
        raise RowsRejected(problems)
    _store(course=course, rows=rows, has_skills_column="skills" in header, result=result)
    return result
