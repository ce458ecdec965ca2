"""The skill graph: finding cycles, adding and removing prerequisites, importing a graph, and
the selectors the recommender reads it with."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from edu_dl.models import Skill, SkillPrerequisite
from edu_dl.selectors.skill_graph import course_prerequisites, starting_skills
from edu_dl.services.catalogue import RowsRejected
from edu_dl.services.errors import Conflict, NotFound, ValidationFailed
from edu_dl.services.importing import ImportFailed
from edu_dl.services.skill_graph import (
    EXERCISE_TABLE,
    PAIRS,
    PrerequisiteCycle,
    find_cycle,
    prerequisite_add,
    prerequisite_remove,
    prerequisites_import,
)
from tests.factories import CourseFactory, SkillFactory


def graph_state() -> tuple[list[tuple], list[tuple]]:
    """Every skill and edge as stored, to show that a refused change wrote nothing."""
    return (
        list(Skill.objects.order_by("pk").values_list("pk", "course_id", "name", "external_id")),
        list(SkillPrerequisite.objects.order_by("pk").values_list("skill_id", "prerequisite_id")),
    )


def edges_by_name(course) -> set[tuple[str, str]]:
    """The course's edges as (prerequisite, skill) names: the order of learning."""
    return set(
        SkillPrerequisite.objects.filter(skill__course=course).values_list(
            "prerequisite__name", "skill__name"
        )
    )


def write_csv(folder: Path, text: str, *, bom: bool = False) -> Path:
    path = folder / "graph.csv"
    path.write_text(text, encoding="utf-8-sig" if bom else "utf-8")
    return path


# --- find_cycle -------------------------------------------------------------------------------


def test_find_cycle_finds_none_in_a_graph_without_one():
    assert find_cycle([("a", "b"), ("b", "c"), ("a", "c"), ("d", "c")]) is None
    assert find_cycle([]) is None


def test_find_cycle_names_the_cycle_in_the_edges_direction():
    assert find_cycle([("x", "a"), ("a", "b"), ("b", "c"), ("c", "a")]) == ["a", "b", "c", "a"]


def test_find_cycle_finds_a_self_loop():
    assert find_cycle([(1, 2), (2, 2)]) == [2, 2]


def test_find_cycle_walks_a_long_chain_without_recursion():
    # given
    length = 20_000  # far deeper than Python's recursion limit
    chain = [(number, number + 1) for number in range(length)]

    # when
    acyclic = find_cycle(chain)
    cyclic = find_cycle([*chain, (length, 0)])

    # then
    assert acyclic is None
    assert cyclic == [*range(length + 1), 0]


# --- prerequisite_add and prerequisite_remove -------------------------------------------------


@pytest.mark.django_db
def test_prerequisite_add_stores_the_edge():
    # given
    course = CourseFactory()
    fractions = SkillFactory(course=course, name="Fractions")
    division = SkillFactory(course=course, name="Division")

    # when
    edge = prerequisite_add(skill=fractions, prerequisite=division)

    # then
    assert (edge.skill, edge.prerequisite) == (fractions, division)
    assert edges_by_name(course) == {("Division", "Fractions")}


@pytest.mark.django_db
def test_prerequisite_add_refuses_an_edge_that_closes_a_cycle_and_names_it():
    # given
    course = CourseFactory()
    fractions = SkillFactory(course=course, name="Fractions")
    division = SkillFactory(course=course, name="Division")
    prerequisite_add(skill=fractions, prerequisite=division)
    before = graph_state()

    # when
    with pytest.raises(PrerequisiteCycle) as error:
        prerequisite_add(skill=division, prerequisite=fractions)

    # then
    assert error.value.message == (
        "adding Fractions -> Division would make a cycle: Division -> Fractions -> Division"
    )
    assert error.value.cycle == ["Division", "Fractions", "Division"]
    assert error.value.field == "prerequisite"
    assert graph_state() == before


@pytest.mark.django_db
def test_prerequisite_add_names_the_shortest_cycle_it_would_close():
    # given: counting -> addition -> multiplication -> powers, and addition -> powers
    course = CourseFactory()
    counting, addition, multiplication, powers = (
        SkillFactory(course=course, name=name)
        for name in ("Counting", "Addition", "Multiplication", "Powers")
    )
    prerequisite_add(skill=addition, prerequisite=counting)
    prerequisite_add(skill=multiplication, prerequisite=addition)
    prerequisite_add(skill=powers, prerequisite=multiplication)
    prerequisite_add(skill=powers, prerequisite=addition)
    before = graph_state()

    # when
    with pytest.raises(PrerequisiteCycle) as error:
        prerequisite_add(skill=counting, prerequisite=powers)

    # then
    assert error.value.message == (
        "adding Powers -> Counting would make a cycle: Counting -> Addition -> Powers -> Counting"
    )
    assert graph_state() == before


@pytest.mark.django_db
def test_prerequisite_add_refuses_a_skill_as_its_own_prerequisite():
    # given
    skill = SkillFactory(name="Fractions")
    before = graph_state()

    # when
    with pytest.raises(ValidationFailed) as error:
        prerequisite_add(skill=skill, prerequisite=skill)

    # then
    assert (error.value.field, error.value.message) == (
        "prerequisite",
        "Fractions cannot be a prerequisite of itself",
    )
    assert graph_state() == before


@pytest.mark.django_db
def test_prerequisite_add_refuses_skills_of_two_courses():
    # given
    fractions = SkillFactory(name="Fractions")
    division = SkillFactory(name="Division")
    before = graph_state()

    # when
    with pytest.raises(ValidationFailed) as error:
        prerequisite_add(skill=fractions, prerequisite=division)

    # then
    assert error.value.message == "Division and Fractions belong to different courses"
    assert graph_state() == before


@pytest.mark.django_db
def test_prerequisite_add_refuses_an_edge_already_there():
    # given
    course = CourseFactory()
    fractions = SkillFactory(course=course, name="Fractions")
    division = SkillFactory(course=course, name="Division")
    prerequisite_add(skill=fractions, prerequisite=division)
    before = graph_state()

    # when
    with pytest.raises(Conflict) as error:
        prerequisite_add(skill=fractions, prerequisite=division)

    # then
    assert error.value.message == "Division is already a prerequisite of Fractions"
    assert graph_state() == before


@pytest.mark.django_db
def test_prerequisite_remove_deletes_the_edge_and_refuses_a_missing_one():
    # given
    course = CourseFactory()
    fractions = SkillFactory(course=course, name="Fractions")
    division = SkillFactory(course=course, name="Division")
    prerequisite_add(skill=fractions, prerequisite=division)

    # when
    prerequisite_remove(skill=fractions, prerequisite=division)
    with pytest.raises(NotFound) as error:
        prerequisite_remove(skill=fractions, prerequisite=division)

    # then
    assert SkillPrerequisite.objects.count() == 0
    assert error.value.message == "Division is not a prerequisite of Fractions"


# --- prerequisites_import: pairs --------------------------------------------------------------


@pytest.mark.django_db
def test_prerequisites_import_adds_pairs_matching_external_ids_then_names(tmp_path):
    # given
    course = CourseFactory()
    SkillFactory(course=course, name="Counting", external_id="count")
    SkillFactory(course=course, name="Addition")
    SkillFactory(course=course, name="Multiplication", external_id="Addition")  # id wins
    SkillFactory(course=course, name="Subtraction")
    path = write_csv(
        tmp_path,
        "skill,prerequisite\n"
        "Subtraction,count\n"
        "Addition,count\n"  # Addition is Multiplication's external id
        "Subtraction,Counting\n"  # the first row again, by name
        "\n",
    )

    # when
    result = prerequisites_import(course=course, path_or_handle=path)

    # then
    assert (result.format, result.read, result.edges_added, result.repeated) == (PAIRS, 3, 2, 1)
    assert (result.already_present, result.duplicates, result.skills_created) == (0, 1, 0)
    assert edges_by_name(course) == {("Counting", "Subtraction"), ("Counting", "Multiplication")}


@pytest.mark.django_db
def test_prerequisites_import_skips_edges_already_stored(tmp_path):
    # given
    course = CourseFactory()
    counting = SkillFactory(course=course, name="Counting")
    addition = SkillFactory(course=course, name="Addition")
    SkillFactory(course=course, name="Subtraction")
    prerequisite_add(skill=addition, prerequisite=counting)
    path = write_csv(tmp_path, "skill,prerequisite\nAddition,Counting\nSubtraction,Addition\n")

    # when
    result = prerequisites_import(course=course, path_or_handle=path)

    # then
    assert (result.edges_added, result.already_present, result.repeated) == (1, 1, 0)
    assert edges_by_name(course) == {("Counting", "Addition"), ("Addition", "Subtraction")}


@pytest.mark.django_db
def test_prerequisites_import_reports_unknown_skills_by_row_and_writes_nothing(tmp_path):
    # given
    course = CourseFactory()
    SkillFactory(course=course, name="Counting")
    SkillFactory(course=course, name="Addition")
    path = write_csv(
        tmp_path,
        "skill,prerequisite\n"
        "Addition,Counting\n"
        "Division,Counting\n"
        "Addition,Addition\n"
        "Addition,\n"
        "Addition\n",
    )
    before = graph_state()

    # when
    with pytest.raises(RowsRejected) as error:
        prerequisites_import(course=course, path_or_handle=path)

    # then
    assert [str(problem) for problem in error.value.problems] == [
        "line 3, skill: unknown skill 'Division' (no skill of the course has this name or "
        "external id)",
        "line 4, prerequisite: Addition cannot be a prerequisite of itself",
        "line 5, prerequisite: prerequisite must not be empty",
        "line 6, row: the row has 1 cells; the header has 2",
    ]
    assert graph_state() == before


@pytest.mark.django_db
def test_prerequisites_import_refuses_a_cycle_through_stored_edges_and_names_it(tmp_path):
    # given
    course = CourseFactory()
    fractions = SkillFactory(course=course, name="Fractions")
    division = SkillFactory(course=course, name="Division")
    SkillFactory(course=course, name="Ratios")
    prerequisite_add(skill=fractions, prerequisite=division)
    path = write_csv(tmp_path, "skill,prerequisite\nRatios,Fractions\nDivision,Ratios\n")
    before = graph_state()

    # when
    with pytest.raises(PrerequisiteCycle) as error:
        prerequisites_import(course=course, path_or_handle=path, create_missing_skills=True)

    # then
    assert error.value.message == (
        "the imported prerequisites would make a cycle: "
        "Division -> Fractions -> Ratios -> Division (lines 2, 3 of the file)"
    )
    assert error.value.cycle == ["Division", "Fractions", "Ratios", "Division"]
    assert error.value.lines == [2, 3]
    assert graph_state() == before


@pytest.mark.django_db
def test_prerequisites_import_creates_missing_skills_when_asked(tmp_path):
    # given
    course = CourseFactory()
    SkillFactory(course=course, name="Counting")
    path = write_csv(tmp_path, "skill,prerequisite\nAddition,Counting\nSubtraction,Addition\n")

    # when
    result = prerequisites_import(course=course, path_or_handle=path, create_missing_skills=True)

    # then
    assert (result.skills_created, result.edges_added) == (2, 2)
    assert set(Skill.objects.filter(course=course).values_list("name", "external_id")) == {
        ("Counting", ""),
        ("Addition", "Addition"),
        ("Subtraction", "Subtraction"),
    }
    assert edges_by_name(course) == {("Counting", "Addition"), ("Addition", "Subtraction")}


@pytest.mark.django_db
def test_prerequisites_import_refuses_a_header_it_does_not_know(tmp_path):
    # given
    course = CourseFactory()
    path = write_csv(tmp_path, "from,to\na,b\n")

    # when
    with pytest.raises(ImportFailed) as error:
        prerequisites_import(course=course, path_or_handle=path, create_missing_skills=True)

    # then
    assert error.value.line == 1
    assert error.value.reason.startswith(
        "the header must hold the columns skill,prerequisite (one edge per row) or "
        "name,prerequisites"
    )
    assert graph_state() == ([], [])


# --- prerequisites_import: exercise tables (Junyi) --------------------------------------------

JUNYI_HEADER = (
    "name,live,prerequisites,h_position,v_position,creation_date,seconds_per_fast_problem,"
    "pretty_display_name,short_display_name,topic,area\n"
)


def junyi_row(name: str, prerequisites: str) -> str:
    return f'{name},TRUE,"{prerequisites}",1,2,2012-10-11 17:55:24 UTC,13,名,名,topic,area\n'


@pytest.mark.django_db
def test_prerequisites_import_reads_a_junyi_exercise_table_with_a_byte_order_mark(tmp_path):
    # given
    course = CourseFactory()
    path = write_csv(
        tmp_path,
        JUNYI_HEADER
        + junyi_row("counting", "")
        + junyi_row("addition_1", "counting")
        + junyi_row("multiplication_1", "addition_1, counting,addition_1")
        + junyi_row("addition_1", "counting"),
        bom=True,
    )

    # when
    result = prerequisites_import(course=course, path_or_handle=path, create_missing_skills=True)

    # then
    assert (result.format, result.read, result.skills_created) == (EXERCISE_TABLE, 4, 3)
    assert (result.edges_added, result.repeated, result.already_present) == (3, 2, 0)
    assert edges_by_name(course) == {
        ("counting", "addition_1"),
        ("addition_1", "multiplication_1"),
        ("counting", "multiplication_1"),
    }


@pytest.mark.django_db
def test_prerequisites_import_reports_a_junyi_table_s_unknown_skills_by_row():
    # given
    course = CourseFactory()
    SkillFactory(course=course, name="Counting", external_id="counting")
    table = JUNYI_HEADER + junyi_row("counting", "") + junyi_row("addition_1", "counting,zero")

    # when
    with pytest.raises(RowsRejected) as error:
        prerequisites_import(course=course, path_or_handle=io.BytesIO(table.encode()))

    # then
    assert [(problem.line, problem.column) for problem in error.value.problems] == [
        (3, "name"),
        (3, "prerequisites"),
    ]
    assert error.value.problems[1].reason == (
        "unknown skill 'zero' (no skill of the course has this name or external id)"
    )
    assert SkillPrerequisite.objects.count() == 0


@pytest.mark.django_db
def test_prerequisites_import_reports_a_cycle_with_the_rows_problems(tmp_path):
    # given
    course = CourseFactory()
    path = write_csv(
        tmp_path,
        JUNYI_HEADER
        + junyi_row("proportions_1", "proportions_1")
        + junyi_row("radicals_a", "radicals_c")
        + junyi_row("radicals_b", "radicals_a")
        + junyi_row("radicals_c", "radicals_b"),
    )

    # when
    with pytest.raises(RowsRejected) as error:
        prerequisites_import(course=course, path_or_handle=path, create_missing_skills=True)

    # then
    assert [str(problem) for problem in error.value.problems] == [
        "line 2, prerequisites: proportions_1 cannot be a prerequisite of itself",
        "line 3, prerequisites: the imported prerequisites would make a cycle: "
        "radicals_c -> radicals_a -> radicals_b -> radicals_c (lines 3, 4, 5 of the file)",
    ]
    assert graph_state() == ([], [])


# --- selectors --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_course_prerequisites_and_starting_skills_read_the_course_graph():
    # given
    course = CourseFactory()
    counting, addition, zero, subtraction = (
        SkillFactory(course=course, name=name)
        for name in ("Counting", "Addition", "Zero", "Subtraction")
    )
    prerequisite_add(skill=addition, prerequisite=counting)
    prerequisite_add(skill=subtraction, prerequisite=addition)
    prerequisite_add(skill=subtraction, prerequisite=zero)
    other = SkillFactory(name="Elsewhere")

    # when
    graph = course_prerequisites(course_id=course.pk)
    starting = starting_skills(course_id=course.pk)

    # then
    assert graph == {
        counting.pk: set(),
        addition.pk: {counting.pk},
        zero.pk: set(),
        subtraction.pk: {addition.pk, zero.pk},
    }
    assert starting == [counting.pk, zero.pk]
    assert other.pk not in graph
