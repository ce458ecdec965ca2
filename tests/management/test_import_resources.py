"""``manage.py import_resources`` on small catalogue files made here."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from edu_dl.models import Resource, ResourceSkill
from edu_dl.services.courses import resource_create
from tests.factories import CourseFactory, SkillFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    course = CourseFactory(slug="algebra")
    SkillFactory(course=course, name="Slope")
    return course


def import_resources(*arguments: str) -> tuple[str, str]:
    output, errors = io.StringIO(), io.StringIO()
    call_command("import_resources", *arguments, stdout=output, stderr=errors)
    return output.getvalue(), errors.getvalue()


def catalogue_state() -> tuple[list[dict], list[tuple]]:
    return (
        list(Resource.objects.order_by("pk").values()),
        list(ResourceSkill.objects.order_by("pk").values_list("resource", "skill", "weight")),
    )


def write_csv(folder: Path, text: str) -> Path:
    path = folder / "catalogue.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_catalogue_is_imported_and_summarised_on_one_line(course, tmp_path):
    # given
    resource_create(course=course, title="Old slopes", kind="video", external_id="r-1")
    resource_create(course=course, title="Lines", kind="reading", external_id="r-2")
    path = write_csv(
        tmp_path,
        "external_id,title,kind,skills\n"
        "r-1,Slopes,video,Slope\n"
        "r-2,Lines,reading,\n"
        "r-3,Circles,exercise,Slope:0.5\n",
    )

    # when
    output, errors = import_resources(str(path), "--course", "algebra")

    # then
    assert output == "catalogue.csv into algebra: 3 read, 1 created, 1 updated, 1 unchanged\n"
    assert errors == ""
    assert sorted(Resource.objects.values_list("external_id", "title")) == [
        ("r-1", "Slopes"),
        ("r-2", "Lines"),
        ("r-3", "Circles"),
    ]


def test_a_bad_catalogue_prints_each_problem_and_imports_nothing(course, tmp_path):
    # given
    resource_create(course=course, title="Old slopes", kind="video", external_id="r-1")
    path = write_csv(
        tmp_path,
        "external_id,title,kind,url,skills\n"
        "r-1,Slopes,video,,Slope\n"
        "r-2,Lines,video,ftp://example.com/lines,Slope\n"
        "r-3,Circles,reading,,Area\n",
    )
    before = catalogue_state()
    errors = io.StringIO()

    # when
    with pytest.raises(CommandError) as error:
        call_command(
            "import_resources",
            str(path),
            "--course",
            "algebra",
            stdout=io.StringIO(),
            stderr=errors,
        )

    # then
    assert str(error.value) == f"{path}: 2 problems (listed above); nothing was imported"
    assert errors.getvalue() == (
        "catalogue.csv: line 3, url: url 'ftp://example.com/lines' is not an http(s) address\n"
        "catalogue.csv: line 4, skills: unknown skill 'Area' (no skill of the course has this "
        "name or external id)\n"
    )
    assert catalogue_state() == before


def test_the_report_option_writes_the_problems_to_a_file(course, tmp_path):
    # given
    path = write_csv(tmp_path, "title,kind,difficulty\nSlopes,video,2\n")
    report = tmp_path / "problems.csv"

    # when
    with pytest.raises(CommandError):
        import_resources(str(path), "--course", "algebra", "--report", str(report))

    # then
    with open(report, encoding="utf-8", newline="") as file:
        assert list(csv.reader(file)) == [
            ["line", "column", "reason", "raw"],
            ["2", "difficulty", "difficulty must be between 0 and 1, not 2", "Slopes,video,2"],
        ]
    assert Resource.objects.count() == 0


def test_a_header_without_title_is_refused(course, tmp_path):
    # given
    path = write_csv(tmp_path, "name,kind\nSlopes,video\n")

    # when
    with pytest.raises(CommandError) as error:
        import_resources(str(path), "--course", "algebra")

    # then
    assert str(error.value) == (
        f"{path}: line 1: the header lacks the column(s) title; unknown column(s) 'name' (the "
        "columns are title, kind, external_id, url, body, skills, difficulty, minutes, language, "
        "active); nothing was imported"
    )
    assert Resource.objects.count() == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--course", "geometry"), "there is no course with slug 'geometry'"),
        (("--course", "algebra"), "does not exist; nothing was imported"),
    ],
)
def test_a_missing_course_or_file_is_refused(course, tmp_path, arguments, message):
    # when
    with pytest.raises(CommandError) as error:
        import_resources(str(tmp_path / "missing.csv"), *arguments)

    # then
    assert message in str(error.value)
    assert Resource.objects.count() == 0
