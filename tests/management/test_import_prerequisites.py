"""``manage.py import_prerequisites`` on small graph files made here."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from edu_dl.models import Skill, SkillPrerequisite
from edu_dl.services.skill_graph import prerequisite_add
from tests.factories import CourseFactory, SkillFactory

pytestmark = pytest.mark.django_db

JUNYI_HEADER = (
    "name,live,prerequisites,h_position,v_position,creation_date,seconds_per_fast_problem,"
    "pretty_display_name,short_display_name,topic,area\n"
)


@pytest.fixture
def course():
    return CourseFactory(slug="arithmetic")


def import_prerequisites(*arguments: str) -> tuple[str, str]:
    output, errors = io.StringIO(), io.StringIO()
    call_command("import_prerequisites", *arguments, stdout=output, stderr=errors)
    return output.getvalue(), errors.getvalue()


def graph_state() -> tuple[list[tuple], list[tuple]]:
    return (
        list(Skill.objects.order_by("pk").values_list("pk", "name", "external_id")),
        list(SkillPrerequisite.objects.order_by("pk").values_list("skill", "prerequisite")),
    )


def write_csv(folder: Path, text: str) -> Path:
    path = folder / "graph.csv"
    path.write_text(text, encoding="utf-8-sig")
    return path


def test_pairs_are_imported_and_summarised_on_one_line(course, tmp_path):
    # given
    counting = SkillFactory(course=course, name="Counting")
    addition = SkillFactory(course=course, name="Addition")
    SkillFactory(course=course, name="Subtraction")
    prerequisite_add(skill=addition, prerequisite=counting)
    path = write_csv(
        tmp_path,
        "skill,prerequisite\nAddition,Counting\nSubtraction,Addition\nSubtraction,Addition\n",
    )

    # when
    output, errors = import_prerequisites(str(path), "--course", "arithmetic")

    # then
    assert output == (
        "graph.csv into arithmetic (pairs): 3 rows read, 0 skills created, 1 edges added, "
        "2 duplicates skipped (1 already present, 1 repeated in the file)\n"
    )
    assert errors == ""
    assert SkillPrerequisite.objects.count() == 2


def test_a_junyi_table_with_create_skills_creates_the_skills(course, tmp_path):
    # given
    path = write_csv(
        tmp_path,
        JUNYI_HEADER
        + "counting,TRUE,,1,2,2012-10-11 17:55:24 UTC,13,數數,數數,counting,arithmetic\n"
        + 'addition_1,TRUE,"counting",1,2,2012-10-11 17:55:24 UTC,13,加法,加法,add,arithmetic\n',
    )

    # when
    output, _ = import_prerequisites(str(path), "--course", "arithmetic", "--create-skills")

    # then
    assert output == (
        "graph.csv into arithmetic (exercise table): 2 rows read, 2 skills created, 1 edges "
        "added, 0 duplicates skipped (0 already present, 0 repeated in the file)\n"
    )
    assert list(SkillPrerequisite.objects.values_list("prerequisite__name", "skill__name")) == [
        ("counting", "addition_1")
    ]


def test_unknown_skills_are_printed_by_row_and_nothing_is_imported(course, tmp_path):
    # given
    SkillFactory(course=course, name="Counting")
    path = write_csv(tmp_path, "skill,prerequisite\nAddition,Counting\nCounting,Zero\n")
    before = graph_state()
    errors = io.StringIO()

    # when
    with pytest.raises(CommandError) as error:
        call_command(
            "import_prerequisites",
            str(path),
            "--course",
            "arithmetic",
            stdout=io.StringIO(),
            stderr=errors,
        )

    # then
    assert str(error.value) == f"{path}: 2 problems (listed above); nothing was imported"
    assert errors.getvalue() == (
        "graph.csv: line 2, skill: unknown skill 'Addition' (no skill of the course has this "
        "name or external id)\n"
        "graph.csv: line 3, prerequisite: unknown skill 'Zero' (no skill of the course has this "
        "name or external id)\n"
    )
    assert graph_state() == before


def test_a_cycle_is_named_and_nothing_is_imported(course, tmp_path):
    # given
    path = write_csv(
        tmp_path, "skill,prerequisite\nDivision,Multiplication\nMultiplication,Division\n"
    )

    # when
    with pytest.raises(CommandError) as error:
        import_prerequisites(str(path), "--course", "arithmetic", "--create-skills")

    # then
    assert str(error.value) == (
        f"{path}: the imported prerequisites would make a cycle: Multiplication -> Division -> "
        "Multiplication (lines 2, 3 of the file); nothing was imported"
    )
    assert graph_state() == ([], [])


def test_an_unknown_course_is_refused(tmp_path):
    # given
    path = write_csv(tmp_path, "skill,prerequisite\n")

    # when
    with pytest.raises(CommandError) as error:
        import_prerequisites(str(path), "--course", "geometry")

    # then
    assert str(error.value) == "there is no course with slug 'geometry'"
