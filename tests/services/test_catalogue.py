"""The study catalogue: changing, deactivating and importing resources."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from edu_dl.models import Resource, ResourceSkill
from edu_dl.services.catalogue import (
    RowProblem,
    RowsRejected,
    resource_deactivate,
    resource_reactivate,
    resource_update,
    resources_import,
)
from edu_dl.services.courses import resource_create
from edu_dl.services.errors import Conflict, ValidationFailed
from edu_dl.services.importing import ImportFailed
from tests.factories import CourseFactory, ResourceFactory, SkillFactory

pytestmark = pytest.mark.django_db


def catalogue_state() -> tuple[list[dict], list[tuple]]:
    """Every resource and skill link as stored, to show that a refused change wrote nothing."""
    return (
        list(Resource.objects.order_by("pk").values()),
        list(ResourceSkill.objects.order_by("pk").values_list("resource_id", "skill_id", "weight")),
    )


def links(resource: Resource) -> set[tuple[str, float]]:
    return set(resource.skill_links.values_list("skill__name", "weight"))


def write_csv(folder: Path, text: str, name: str = "resources.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- resource_update --------------------------------------------------------------------------


def test_resource_update_changes_the_given_fields_and_replaces_the_skills():
    # given
    course = CourseFactory()
    slope, intercept = SkillFactory(course=course, name="Slope"), SkillFactory(course=course)
    resource = resource_create(
        course=course, title="Lines", skills=[intercept], difficulty=0.2, external_id="r-1"
    )

    # when
    resource_update(
        resource=resource,
        title="Straight lines",
        url="https://example.com/lines",
        skills={slope: 0.5},
        minutes=12,
    )

    # then
    resource.refresh_from_db()
    assert (resource.title, resource.url, resource.minutes, resource.difficulty) == (
        "Straight lines",
        "https://example.com/lines",
        12,
        0.2,
    )
    assert resource.external_id == "r-1"
    assert links(resource) == {("Slope", 0.5)}


def test_resource_update_without_skills_keeps_them():
    # given
    skill = SkillFactory(name="Slope")
    resource = resource_create(course=skill.course, title="Lines", skills={skill: 2.0})

    # when
    resource_update(resource=resource, kind="video")

    # then
    resource.refresh_from_db()
    assert resource.kind == "video"
    assert links(resource) == {("Slope", 2.0)}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"difficulty": 1.5}, "difficulty", "difficulty must be between 0 and 1, not 1.5"),
        ({"minutes": 0}, "minutes", "minutes must be a whole number of at least 1"),
        (
            {"kind": "podcast"},
            "kind",
            "kind 'podcast' is not one of video, reading, exercise, interactive",
        ),
        (
            {"url": "ftp://example.com/x"},
            "url",
            "url 'ftp://example.com/x' is not an http(s) address",
        ),
        (
            {"url": "javascript:alert(1)"},
            "url",
            "url 'javascript:alert(1)' is not an http(s) address",
        ),
        ({"title": " "}, "title", "title must not be empty"),
        ({"title": "New", "language": ""}, "language", "language must not be empty"),
    ],
)
def test_resource_update_refuses_what_resource_create_refuses(fields, field, message):
    # given
    skill = SkillFactory()
    resource = resource_create(course=skill.course, title="Lines", skills=[skill])
    before = catalogue_state()

    # when
    with pytest.raises(ValidationFailed) as error:
        resource_update(resource=resource, skills=[], **fields)

    # then
    assert (error.value.field, error.value.message) == (field, message)
    assert catalogue_state() == before


def test_resource_update_refuses_a_weight_that_is_not_positive():
    # given
    skill = SkillFactory(name="Slope")
    resource = resource_create(course=skill.course, title="Lines")
    before = catalogue_state()

    # when
    with pytest.raises(ValidationFailed) as error:
        resource_update(resource=resource, title="Slopes", skills={skill: -1})

    # then
    assert (error.value.field, error.value.message) == (
        "skills",
        "the weight of skill 'Slope' must be positive",
    )
    assert catalogue_state() == before


def test_resource_update_refuses_a_skill_of_another_course():
    # given
    resource = ResourceFactory()
    foreign = SkillFactory(name="Foreign")
    before = catalogue_state()

    # when
    with pytest.raises(ValidationFailed) as error:
        resource_update(resource=resource, skills=[foreign])

    # then
    assert error.value.field == "skills"
    assert error.value.message == (
        f"skills: Foreign belong to another course than {resource.course.slug!r}"
    )
    assert catalogue_state() == before


def test_resource_update_refuses_an_external_id_of_another_resource_of_the_course():
    # given
    course = CourseFactory(slug="algebra")
    resource_create(course=course, title="Lines", external_id="r-1")
    other = resource_create(course=course, title="Circles", external_id="r-2")
    before = catalogue_state()

    # when
    with pytest.raises(Conflict) as error:
        resource_update(resource=other, title="Round things", external_id="r-1")

    # then
    assert (error.value.field, error.value.message) == (
        "external_id",
        "course 'algebra' already has a resource with external id 'r-1'",
    )
    assert catalogue_state() == before


def test_resource_update_may_keep_its_own_external_id():
    # given
    resource = ResourceFactory(external_id="r-1")

    # when
    resource_update(resource=resource, external_id="r-1", title="Renamed")

    # then
    resource.refresh_from_db()
    assert (resource.external_id, resource.title) == ("r-1", "Renamed")


def test_resource_update_refuses_a_field_it_cannot_change():
    # given
    resource = ResourceFactory()
    before = catalogue_state()

    # when
    with pytest.raises(TypeError) as error:
        resource_update(resource=resource, course=CourseFactory())  # type: ignore[call-arg]

    # then
    assert str(error.value) == "resource_update() got fields it cannot change: course"
    assert catalogue_state() == before


# --- deactivating -----------------------------------------------------------------------------


def test_resource_deactivate_and_reactivate_switch_it_and_keep_its_skills():
    # given
    skill = SkillFactory(name="Slope")
    resource = resource_create(course=skill.course, title="Lines", skills=[skill])

    # when
    resource_deactivate(resource=resource)
    stored_after_deactivate = Resource.objects.get(pk=resource.pk).is_active
    resource_reactivate(resource=resource)

    # then
    assert stored_after_deactivate is False
    assert Resource.objects.get(pk=resource.pk).is_active is True
    assert resource.is_active is True
    assert links(resource) == {("Slope", 1.0)}


def test_resource_deactivate_twice_changes_nothing_the_second_time():
    # given
    resource = ResourceFactory()
    resource_deactivate(resource=resource)
    before = catalogue_state()

    # when
    resource_deactivate(resource=resource)

    # then
    assert catalogue_state() == before
    assert before[0][0]["is_active"] is False


# --- resources_import -------------------------------------------------------------------------


def test_resources_import_creates_the_rows_with_their_skills_and_defaults(tmp_path):
    # given
    course = CourseFactory()
    SkillFactory(course=course, name="Slope")
    SkillFactory(course=course, name="Intercept", external_id="skill-intercept")
    path = write_csv(
        tmp_path,
        "title,kind,external_id,url,skills,difficulty,minutes,language,active,body\n"
        "Slopes,video,r-1,https://example.com/slopes,Slope,0.2,6,fr,no,Rise over run.\n"
        'Lines,exercise,r-2,,"Slope:0.5; skill-intercept",,,,,"Ten, with hints."\n'
        "Notes,reading,,,,,,,,\n",
    )

    # when
    result = resources_import(course=course, path_or_handle=path)

    # then
    assert (result.read, result.created, result.updated, result.unchanged) == (3, 3, 0, 0)
    stored = {resource.title: resource for resource in Resource.objects.filter(course=course)}
    slopes, lines, notes = stored["Slopes"], stored["Lines"], stored["Notes"]
    assert (
        slopes.kind,
        slopes.external_id,
        slopes.url,
        slopes.difficulty,
        slopes.minutes,
        slopes.language,
        slopes.is_active,
        slopes.body,
    ) == ("video", "r-1", "https://example.com/slopes", 0.2, 6, "fr", False, "Rise over run.")
    assert (lines.difficulty, lines.minutes, lines.language, lines.is_active, lines.body) == (
        0.5,
        10,
        "en",
        True,
        "Ten, with hints.",
    )
    assert links(slopes) == {("Slope", 1.0)}
    assert links(lines) == {("Slope", 0.5), ("Intercept", 1.0)}
    assert (notes.external_id, links(notes)) == ("", set())


def test_resources_import_upserts_by_external_id(tmp_path):
    # given
    course = CourseFactory()
    slope = SkillFactory(course=course, name="Slope")
    SkillFactory(course=course, name="Intercept")
    kept = resource_create(
        course=course,
        title="Slopes",
        kind="video",
        skills=[slope],
        difficulty=0.2,
        external_id="r-1",
    )
    changed = resource_create(
        course=course,
        title="Lines",
        kind="exercise",
        skills=[slope],
        difficulty=0.6,
        minutes=15,
        external_id="r-2",
    )
    path = write_csv(
        tmp_path,
        "external_id,title,kind,skills,difficulty\n"
        "r-1,Slopes,video,Slope,0.2\n"
        "r-2,Lines and intercepts,exercise,Slope;Intercept:2,0.7\n"
        "r-3,Circles,reading,,0.1\n",
    )

    # when
    result = resources_import(course=course, path_or_handle=path)

    # then
    assert (result.read, result.created, result.updated, result.unchanged) == (3, 1, 1, 1)
    assert Resource.objects.count() == 3
    changed.refresh_from_db()
    assert (changed.title, changed.difficulty, changed.minutes) == ("Lines and intercepts", 0.7, 15)
    assert links(changed) == {("Slope", 1.0), ("Intercept", 2.0)}
    assert links(kept) == {("Slope", 1.0)}
    assert Resource.objects.get(external_id="r-3").title == "Circles"


def test_resources_import_of_the_same_file_again_changes_nothing(tmp_path):
    # given
    course = CourseFactory()
    SkillFactory(course=course, name="Slope")
    path = write_csv(
        tmp_path,
        "external_id,title,kind,skills,difficulty,url\n"
        "r-1,Slopes,video,Slope:0.5,0.25,https://example.com/s\n"
        "r-2,Lines,exercise,,,\n",
    )
    resources_import(course=course, path_or_handle=path)
    before = catalogue_state()

    # when
    result = resources_import(course=course, path_or_handle=path)

    # then
    assert (result.read, result.created, result.updated, result.unchanged) == (2, 0, 0, 2)
    assert catalogue_state() == before


def test_resources_import_without_a_skills_column_keeps_the_skills_and_blank_cells_keep_values(
    tmp_path,
):
    # given
    course = CourseFactory()
    slope = SkillFactory(course=course, name="Slope")
    resource = resource_create(
        course=course,
        title="Lines",
        skills={slope: 3.0},
        difficulty=0.8,
        minutes=20,
        language="de",
        is_active=False,
        external_id="r-1",
    )
    path = write_csv(
        tmp_path, "external_id,title,kind,difficulty,minutes,language,active\nr-1,Lines,video,,,,\n"
    )

    # when
    result = resources_import(course=course, path_or_handle=path)

    # then
    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    resource.refresh_from_db()
    assert (resource.kind, resource.difficulty, resource.minutes, resource.language) == (
        "video",
        0.8,
        20,
        "de",
    )
    assert resource.is_active is False
    assert links(resource) == {("Slope", 3.0)}


def test_resources_import_finds_a_skill_whose_name_holds_a_colon(tmp_path):
    # given
    course = CourseFactory()
    SkillFactory(course=course, name="Ratios: parts")
    path = write_csv(tmp_path, 'title,kind,skills\nParts,reading,"Ratios: parts;Ratios: parts:2"\n')

    # when
    with pytest.raises(RowsRejected) as error:
        resources_import(course=course, path_or_handle=path)

    # then
    assert [str(problem) for problem in error.value.problems] == [
        "line 2, skills: skill 'Ratios: parts' is named twice"
    ]


def test_a_refused_import_lists_every_bad_row_and_writes_nothing(tmp_path):
    # given
    course = CourseFactory()
    SkillFactory(course=course, name="Slope")
    existing = resource_create(course=course, title="Old slopes", external_id="r-1")
    path = write_csv(
        tmp_path,
        "external_id,title,kind,url,skills,difficulty\n"
        "r-1,Slopes,video,https://example.com/slopes,Slope,0.2\n"
        "r-2,Lines,video,ftp://example.com/lines,Slope,0.3\n"
        "r-3,Areas,podcast,,Area,1.5\n"
        "r-1,Again,reading,,Slope:0,0.5\n"
        ",,reading,,,\n"
        "r-6,Circles,reading,,,lots\n"
        "r-7,Squares,reading\n",
    )
    before = catalogue_state()

    # when
    with pytest.raises(RowsRejected) as error:
        resources_import(course=course, path_or_handle=path)

    # then
    assert [(problem.line, problem.column, problem.reason) for problem in error.value.problems] == [
        (3, "url", "url 'ftp://example.com/lines' is not an http(s) address"),
        (4, "kind", "kind 'podcast' is not one of video, reading, exercise, interactive"),
        (
            4,
            "skills",
            "unknown skill 'Area' (no skill of the course has this name or external id)",
        ),
        (4, "difficulty", "difficulty must be between 0 and 1, not 1.5"),
        (5, "skills", "the weight of skill 'Slope' must be positive"),
        (5, "external_id", "external_id 'r-1' is also on line 2"),
        (6, "title", "title must not be empty"),
        (7, "difficulty", "difficulty must be a number, not 'lots'"),
        (8, "row", "the row has 3 cells; the header has 6"),
    ]
    assert error.value.field == "file"
    assert error.value.message.startswith(
        "9 problems in the file, nothing was imported: "
        "line 3, url: url 'ftp://example.com/lines' is not an http(s) address; line 4, kind: "
    )
    assert catalogue_state() == before
    existing.refresh_from_db()
    assert existing.title == "Old slopes"


def test_a_refused_import_writes_its_problems_to_the_report(tmp_path):
    # given
    course = CourseFactory()
    path = write_csv(
        tmp_path, "title,kind,url\nLines,video,ftp://example.com/x\nCircles,reading,\n"
    )
    report = tmp_path / "problems.csv"

    # when
    with pytest.raises(RowsRejected):
        resources_import(course=course, path_or_handle=path, report_path=report)

    # then
    with open(report, encoding="utf-8", newline="") as file:
        assert list(csv.reader(file)) == [
            ["line", "column", "reason", "raw"],
            [
                "2",
                "url",
                "url 'ftp://example.com/x' is not an http(s) address",
                "Lines,video,ftp://example.com/x",
            ],
        ]
    assert Resource.objects.count() == 0


def test_a_successful_import_writes_an_empty_report(tmp_path):
    # given
    course = CourseFactory()
    path = write_csv(tmp_path, "title,kind\nLines,video\n")
    report = tmp_path / "problems.csv"

    # when
    result = resources_import(course=course, path_or_handle=path, report_path=report)

    # then
    assert result.report_path == report
    with open(report, encoding="utf-8", newline="") as file:
        assert list(csv.reader(file)) == [["line", "column", "reason", "raw"]]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("title,url", "the header lacks the column(s) kind"),
        (
            "title,kind,dificulty",
            "unknown column(s) 'dificulty' (the columns are title, kind, external_id, url, body, "
            "skills, difficulty, minutes, language, active)",
        ),
        ("title,kind,title", "column(s) title appear more than once"),
    ],
)
def test_resources_import_refuses_a_header_it_does_not_know(tmp_path, header, reason):
    # given
    course = CourseFactory()
    path = write_csv(tmp_path, f"{header}\nLines,video,x\n")

    # when
    with pytest.raises(ImportFailed) as error:
        resources_import(course=course, path_or_handle=path)

    # then
    assert (error.value.line, error.value.reason) == (1, reason)
    assert Resource.objects.count() == 0


def test_resources_import_reads_an_open_binary_file_with_a_byte_order_mark():
    # given
    course = CourseFactory()
    handle = io.BytesIO("title,kind\nÉquations,reading\n".encode("utf-8-sig"))

    # when
    result = resources_import(course=course, path_or_handle=handle)

    # then
    assert result.created == 1
    assert Resource.objects.get().title == "Équations"
    assert not handle.closed


def test_resources_import_reads_an_open_text_file():
    # given
    course = CourseFactory()

    # when
    result = resources_import(
        course=course, path_or_handle=io.StringIO("\ufefftitle,kind\nLines,video\n\n")
    )

    # then
    assert (result.read, result.created) == (1, 1)


def test_resources_import_refuses_text_that_is_not_utf8(tmp_path):
    # given
    course = CourseFactory()
    path = tmp_path / "latin1.csv"
    path.write_bytes("title,kind\nLines,video\nÉquations,reading\n".encode("latin-1"))

    # when
    with pytest.raises(ImportFailed) as error:
        resources_import(course=course, path_or_handle=path)

    # then
    assert (error.value.line, error.value.reason) == (3, "the file is not UTF-8 text")
    assert Resource.objects.count() == 0


def test_row_problem_reads_as_its_line_column_and_reason():
    assert str(RowProblem(line=4, column="url", reason="bad")) == "line 4, url: bad"
