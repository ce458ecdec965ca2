"""The skill graph: which skills are to be mastered before which.

An edge ``SkillPrerequisite(skill, prerequisite)`` says that ``prerequisite`` comes before
``skill``; messages write it ``prerequisite -> skill`` (the order of learning). The graph of a
course never has a cycle: a cycle would leave its skills with no way in, and the recommender
walks the graph from :func:`~edu_dl.selectors.skill_graph.starting_skills`. Every change to a
course's graph takes a lock on the course (PostgreSQL), so two changes cannot close a cycle
between them.

Importing a graph
-----------------
:func:`prerequisites_import` reads a CSV file in one of two formats, told apart by its header:

- *pairs*: columns ``skill`` and ``prerequisite``, one edge per row;
- *exercise table* (the Junyi Academy exercise table): columns ``name`` (the skill) and
  ``prerequisites`` (its prerequisites, separated by commas inside the one field, possibly
  none). Other columns are ignored.

Skills are found by external id, else by name. A skill the course lacks is reported with its
line, unless ``create_missing_skills``: then it is created with the file's text as both name and
external id (so that a later rename keeps it found, as answer imports do). An edge already
stored, or repeated in the file, is counted and skipped. Every row is checked, and the whole
graph (stored edges and the file's) is searched for a cycle, before anything is written; a wrong
row raises :class:`~edu_dl.services.catalogue.RowsRejected` (every problem), a cycle
:class:`PrerequisiteCycle` (one cycle, named), and nothing is written.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import IO, Any, TypeVar

from django.db import transaction

from edu_dl.models import Course, Skill, SkillPrerequisite
from edu_dl.selectors.skill_graph import course_prerequisites
from edu_dl.services.catalogue import (
    CourseSkillIndex,
    RowProblem,
    RowsRejected,
    csv_table,
    row_text,
)
from edu_dl.services.errors import Conflict, NotFound, ValidationFailed
from edu_dl.services.importing import ImportFailed

PAIRS = "pairs"
EXERCISE_TABLE = "exercise_table"
SKILL_NAME_MAX_LENGTH = 200
_QUERY_CHUNK = 500  # ids per ``__in`` query (SQLite limits parameters)

Node = TypeVar("Node", bound=Hashable)
_END: Any = object()  # an exhausted iterator's next()


class PrerequisiteCycle(Conflict):
    """An edge, or an imported graph, would make a cycle; ``cycle`` names it (first = last)."""

    def __init__(self, message: str, *, cycle: list[str], lines: Sequence[int] = ()):
        super().__init__(
            message, field="prerequisite", extra={"cycle": cycle, "lines": list(lines)}
        )
        self.cycle = cycle
        # An import's: the lines of the file that give the cycle's edges.
        self.lines = list(lines)


def find_cycle(edges: Iterable[tuple[Node, Node]]) -> list[Node] | None:
    """A cycle of the directed graph of ``edges`` (``(before, after)`` pairs), or None.

    The cycle is its nodes in the edges' direction, the first repeated at the end:
    ``[a, b, a]`` for the edges ``(a, b)`` and ``(b, a)``; a self-loop ``(a, a)`` is
    ``[a, a]``. The search is an iterative depth-first search (no recursion, so graphs of any
    depth), visiting nodes in the order the edges first name them, so the same edges give the
    same cycle. Linear in the number of edges.
    """
    successors: dict[Node, list[Node]] = {}
    for before, after in edges:
        successors.setdefault(before, []).append(after)
        successors.setdefault(after, [])
    on_path: dict[Node, int] = {}  # node -> its place on the current path
    done: set[Node] = set()
    for start in successors:
        if start in done:
            continue
        path = [start]
        on_path[start] = 0
        pending = [iter(successors[start])]
        while pending:
            following = next(pending[-1], _END)
            if following is _END:
                node = path.pop()
                del on_path[node]
                done.add(node)
                pending.pop()
            elif following in on_path:
                return [*path[on_path[following] :], following]
            elif following not in done:
                on_path[following] = len(path)
                path.append(following)
                pending.append(iter(successors[following]))
    return None


def _lock_course(course_id: int) -> None:
    """One change to a course's graph at a time (a row lock; SQLite writes one at a time)."""
    list(Course.objects.select_for_update().filter(pk=course_id).values_list("pk", flat=True))


def _unlocks(graph: dict[int, set[int]]) -> dict[int, list[int]]:
    """Skill id -> the ids of the skills it is a prerequisite of, in id order."""
    unlocks: dict[int, list[int]] = {pk: [] for pk in graph}
    for skill_id in sorted(graph):
        for prerequisite_id in graph[skill_id]:
            unlocks.setdefault(prerequisite_id, []).append(skill_id)
    return unlocks


def _shortest_path(unlocks: dict[int, list[int]], *, start: int, goal: int) -> list[int] | None:
    """The shortest path from ``start`` to ``goal`` along the graph's edges, or None."""
    came_from: dict[int, int | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = [node]
            while (previous := came_from[path[-1]]) is not None:
                path.append(previous)
            return path[::-1]
        for following in unlocks.get(node, ()):
            if following not in came_from:
                came_from[following] = node
                queue.append(following)
    return None


def _arrows(names: Iterable[str]) -> str:
    return " -> ".join(names)


@transaction.atomic
def prerequisite_add(*, skill: Skill, prerequisite: Skill) -> SkillPrerequisite:
    """Make ``prerequisite`` a skill to master before ``skill``.

    Refused: a skill as its own prerequisite, skills of two courses, an edge already there
    (:class:`~edu_dl.services.errors.Conflict`) and an edge that would close a cycle
    (:class:`PrerequisiteCycle`, whose message names the cycle, shortest first).
    """
    if skill.pk == prerequisite.pk:
        raise ValidationFailed(
            f"{skill.name} cannot be a prerequisite of itself", field="prerequisite"
        )
    if skill.course_id != prerequisite.course_id:
        raise ValidationFailed(
            f"{prerequisite.name} and {skill.name} belong to different courses",
            field="prerequisite",
        )
    _lock_course(skill.course_id)
    if SkillPrerequisite.objects.filter(skill=skill, prerequisite=prerequisite).exists():
        raise Conflict(
            f"{prerequisite.name} is already a prerequisite of {skill.name}", field="prerequisite"
        )
    graph = course_prerequisites(course_id=skill.course_id)
    path = _shortest_path(_unlocks(graph), start=skill.pk, goal=prerequisite.pk)
    if path is not None:
        names = dict(Skill.objects.filter(pk__in=path).values_list("pk", "name"))
        cycle = [names[pk] for pk in path] + [skill.name]
        raise PrerequisiteCycle(
            f"adding {prerequisite.name} -> {skill.name} would make a cycle: {_arrows(cycle)}",
            cycle=cycle,
        )
    return SkillPrerequisite.objects.create(skill=skill, prerequisite=prerequisite)


@transaction.atomic
def prerequisite_remove(*, skill: Skill, prerequisite: Skill) -> None:
    """``prerequisite`` no longer comes before ``skill``; NotFound when it did not."""
    deleted, _ = SkillPrerequisite.objects.filter(skill=skill, prerequisite=prerequisite).delete()
    if not deleted:
        raise NotFound(
            f"{prerequisite.name} is not a prerequisite of {skill.name}", field="prerequisite"
        )


# --- importing a graph ------------------------------------------------------------------------


@dataclass
class PrerequisiteImportResult:
    """What :func:`prerequisites_import` read and did."""

    format: str = ""  # PAIRS or EXERCISE_TABLE
    read: int = 0  # rows
    skills_created: int = 0
    edges_added: int = 0
    already_present: int = 0  # edges of the file the course had already
    repeated: int = 0  # edges the file gives more than once (counted after the first)

    @property
    def duplicates(self) -> int:
        """Edges of the file that were skipped, being stored already or given before."""
        return self.already_present + self.repeated


def _file_format(header: list[str]) -> tuple[str, str, str]:
    """The format the header shows, and its skill and prerequisite columns."""
    columns = {name.lower() for name in header}
    if {"skill", "prerequisite"} <= columns:
        return PAIRS, "skill", "prerequisite"
    if {"name", "prerequisites"} <= columns:
        return EXERCISE_TABLE, "name", "prerequisites"
    raise ImportFailed(
        1,
        "the header must hold the columns skill,prerequisite (one edge per row) or "
        "name,prerequisites (an exercise table such as Junyi Academy's, prerequisites "
        f"separated by commas), not {','.join(header)}",
    )


class _GraphRows:
    """The checked rows of an imported graph: its nodes, new skills, edges and problems.

    A node is a stored skill's pk or, for a skill to create, the file's text for it.
    """

    def __init__(self, *, course: Course, create_missing_skills: bool):
        self.skills = CourseSkillIndex(course)
        self.create_missing_skills = create_missing_skills
        self.new_skills: dict[str, int] = {}  # text -> first line naming it
        self.edges: dict[tuple[int | str, int | str], int] = {}  # (before, after) -> first line
        self.problems: list[RowProblem] = []
        self.repeated = 0
        self.prerequisite_column = "prerequisite"

    def problem(self, line: int, column: str, reason: str, cells: list[str]) -> None:
        self.problems.append(
            RowProblem(line=line, column=column, reason=reason, raw=row_text(cells))
        )

    def node(self, text: str, *, line: int, column: str, cells: list[str]) -> int | str | None:
        text = text.strip()
        if not text:
            self.problem(line, column, f"{column} must not be empty", cells)
            return None
        pk = self.skills.find(text)
        if pk is not None:
            return pk
        if not self.create_missing_skills:
            self.problem(
                line,
                column,
                f"unknown skill {text!r} (no skill of the course has this name or external id)",
                cells,
            )
            return None
        if len(text) > SKILL_NAME_MAX_LENGTH:
            self.problem(
                line,
                column,
                f"a new skill's name has at most {SKILL_NAME_MAX_LENGTH} characters; "
                f"{text[:40]!r}... has {len(text)}",
                cells,
            )
            return None
        self.new_skills.setdefault(text, line)
        return text

    def edge(
        self,
        before: int | str | None,
        after: int | str | None,
        *,
        line: int,
        column: str,
        cells: list[str],
    ) -> None:
        if before is None or after is None:
            return
        if before == after:
            self.problem(
                line, column, f"{self.name(after)} cannot be a prerequisite of itself", cells
            )
        elif (before, after) in self.edges:
            self.repeated += 1
        else:
            self.edges[(before, after)] = line

    def name(self, node: int | str) -> str:
        return self.skills.names[node] if isinstance(node, int) else node


def _read_graph(
    path_or_handle: str | os.PathLike[str] | IO[Any],
    rows: _GraphRows,
    result: PrerequisiteImportResult,
) -> None:
    with csv_table(path_or_handle) as (header, records):
        result.format, skill_column, prerequisite_column = _file_format(header)
        rows.prerequisite_column = prerequisite_column
        lowered = [name.lower() for name in header]
        skill_at, prerequisite_at = lowered.index(skill_column), lowered.index(prerequisite_column)
        for line, cells in records:
            result.read += 1
            if len(cells) != len(header):
                rows.problem(
                    line,
                    "row",
                    f"the row has {len(cells)} cells; the header has {len(header)}",
                    cells,
                )
                continue
            after = rows.node(cells[skill_at], line=line, column=skill_column, cells=cells)
            if result.format == PAIRS:
                befores = [cells[prerequisite_at]]
            else:
                befores = [text for text in cells[prerequisite_at].split(",") if text.strip()]
            for text in befores:
                before = rows.node(text, line=line, column=prerequisite_column, cells=cells)
                rows.edge(before, after, line=line, column=prerequisite_column, cells=cells)


def _cycle(rows: _GraphRows, stored: set[tuple[int, int]]) -> PrerequisiteCycle | None:
    """The error naming a cycle of the stored and the file's edges, with the lines of the
    file's; None when there is none."""
    cycle = find_cycle([*stored, *rows.edges])
    if cycle is None:
        return None
    names = [rows.name(node) for node in cycle]
    lines = sorted({rows.edges[step] for step in pairwise(cycle) if step in rows.edges})
    if lines:
        where = f"line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))} of the file"
        message = f"the imported prerequisites would make a cycle: {_arrows(names)} ({where})"
    else:  # written around the services (the admin, the database)
        message = f"the course's stored prerequisites make a cycle: {_arrows(names)}"
    return PrerequisiteCycle(message, cycle=names, lines=lines)


def _create_skills(*, course: Course, texts: list[str]) -> dict[str, int]:
    """Create a skill per text (name and external id); their pks by text."""
    Skill.objects.bulk_create(
        [Skill(course=course, name=text, external_id=text) for text in texts], batch_size=500
    )
    pks: dict[str, int] = {}
    for start in range(0, len(texts), _QUERY_CHUNK):
        pks.update(
            Skill.objects.filter(
                course=course, external_id__in=texts[start : start + _QUERY_CHUNK]
            ).values_list("external_id", "pk")
        )
    return pks


@transaction.atomic
def prerequisites_import(
    *,
    course: Course,
    path_or_handle: str | os.PathLike[str] | IO[Any],
    create_missing_skills: bool = False,
) -> PrerequisiteImportResult:
    """Add the prerequisite edges of a CSV file to ``course``'s skill graph; all or nothing.

    ``path_or_handle`` is a path or an open text or binary file (UTF-8, a byte order mark is
    fine). See the module docstring for the formats and the rules.
    """
    _lock_course(course.pk)
    result = PrerequisiteImportResult()
    rows = _GraphRows(course=course, create_missing_skills=create_missing_skills)
    _read_graph(path_or_handle, rows, result)
    result.repeated = rows.repeated
    stored = {
        (prerequisite_id, skill_id)
        for skill_id, prerequisite_ids in course_prerequisites(course_id=course.pk).items()
        for prerequisite_id in prerequisite_ids
    }
    result.already_present = sum(1 for edge in rows.edges if edge in stored)
    for edge in [edge for edge in rows.edges if edge in stored]:
        del rows.edges[edge]
    # The rows' edges that are right may close a cycle already: it is reported with their
    # problems, so that one run shows everything to mend.
    cycle = _cycle(rows, stored)
    if rows.problems:
        if cycle is not None:
            rows.problems.append(
                RowProblem(
                    line=cycle.lines[0] if cycle.lines else 1,
                    column=rows.prerequisite_column,
                    reason=cycle.message,
                )
            )
            rows.problems.sort(key=lambda problem: problem.line)
        raise RowsRejected(rows.problems)
    if cycle is not None:
        raise cycle
    created = _create_skills(course=course, texts=list(rows.new_skills))
    result.skills_created = len(created)

    def pk(node: int | str) -> int:
        return node if isinstance(node, int) else created[node]

    links = [
        SkillPrerequisite(skill_id=pk(after), prerequisite_id=pk(before))
        for before, after in rows.edges
    ]
    SkillPrerequisite.objects.bulk_create(links, batch_size=1000)
    result.edges_added = len(links)
    return result
