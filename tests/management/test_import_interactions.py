"""``manage.py import_interactions`` on the samples in ``tests/data/kt`` and on files made here."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from edu_dl.models import Enrollment, Interaction, Item, Skill
from tests.factories import CourseFactory

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "kt"


@pytest.fixture
def course():
    return CourseFactory(slug="algebra")


def import_interactions(*arguments: str) -> str:
    output = io.StringIO()
    call_command("import_interactions", *arguments, stdout=output)
    return output.getvalue()


def table_counts() -> dict[str, int]:
    return {
        "Interaction": Interaction.objects.count(),
        "User": get_user_model().objects.count(),
        "Enrollment": Enrollment.objects.count(),
        "Skill": Skill.objects.count(),
        "Item": Item.objects.count(),
    }


def test_a_csv_sample_is_imported_and_summarised_on_one_line(course):
    # when
    output = import_interactions(
        str(SAMPLES / "sample.csv"), "--course", "algebra", "--format", "csv"
    )

    # then
    assert output == (
        "sample.csv into algebra: 4 read, 4 imported, 0 already present, 0 rejected; "
        "created 2 students, 2 items, 2 skills\n"
    )
    answers = Interaction.objects.filter(student__username="algebra-70679").order_by("timestamp")
    assert [(a.item.external_id, a.correct, a.attempt, a.duration_s) for a in answers] == [
        ("a09-p101", True, 1, 35.5),
        ("a09-p102", False, 1, 61.0),
        ("a09-p102", True, 2, 20.0),
    ]
    assert answers[0].timestamp == datetime(2009, 10, 1, 14, 0, tzinfo=UTC)


def test_importing_a_file_again_adds_nothing(course):
    # given
    arguments = (str(SAMPLES / "sample.csv"), "--course", "algebra", "--format", "csv")
    import_interactions(*arguments)
    before = table_counts()

    # when
    output = import_interactions(*arguments)

    # then
    assert output == (
        "sample.csv into algebra: 4 read, 0 imported, 4 already present, 0 rejected; "
        "created 0 students, 0 items, 0 skills\n"
    )
    assert table_counts() == before


@pytest.mark.parametrize(
    ("sample", "format", "options", "summary"),
    [
        (
            "sample_akt4.csv",
            "akt",
            [],
            "5 read, 5 imported, 0 already present, 0 rejected; "
            "created 2 students, 4 items, 3 skills",
        ),
        (
            "sample_akt4.csv",
            "akt",
            ["--akt-lines", "4"],
            "5 read, 5 imported, 0 already present, 0 rejected; "
            "created 2 students, 4 items, 3 skills",
        ),
        (
            "sample_akt3.csv",
            "akt",
            [],
            "8 read, 8 imported, 0 already present, 0 rejected; "
            "created 2 students, 0 items, 3 skills",
        ),
        (
            "sample_dkt.csv",
            "dkt",
            [],
            "5 read, 5 imported, 0 already present, 0 rejected; "
            "created 2 students, 0 items, 2 skills",
        ),
    ],
    ids=["akt, 4 lines detected", "akt, 4 lines given", "akt, 3 lines detected", "dkt"],
)
def test_block_files_are_imported(course, sample, format, options, summary):
    # when
    output = import_interactions(
        str(SAMPLES / sample), "--course", "algebra", "--format", format, *options
    )

    # then
    assert output == f"{sample} into algebra: {summary}\n"
    assert Interaction.objects.count() == int(summary.split(" ")[0])


def test_a_bad_row_stops_with_its_line_and_reason_and_imports_nothing(course, tmp_path):
    # given
    path = tmp_path / "answers.csv"
    path.write_text(
        "student,item,skills,correct,timestamp\n"
        "s1,p1,Fractions,1,2026-01-05T10:00:00Z\n"
        "s1,p2,Fractions,1,2026-01-05T10:0\n"
    )
    before = table_counts()

    # when
    with pytest.raises(CommandError) as error:
        import_interactions(str(path), "--course", "algebra", "--format", "csv")

    # then
    assert str(error.value) == (
        f"{path}: line 3: timestamp '2026-01-05T10:0' is not ISO 8601; nothing was imported"
    )
    assert table_counts() == before


def test_skip_invalid_imports_the_valid_rows_and_writes_the_report(course, tmp_path, monkeypatch):
    # given
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "fold.csv"
    path.write_text("1,700\n37,54\n1,0\n2,701\n37,54\n1,7\n")

    # when
    output = import_interactions(
        str(path), "--course", "algebra", "--format", "akt", "--akt-lines", "3", "--skip-invalid"
    )

    # then
    assert output == (
        "fold.csv into algebra: 2 read, 2 imported, 0 already present, 1 rejected; "
        "created 1 students, 0 items, 2 skills; rejected rows in fold.csv.rejected.csv\n"
    )
    with open(tmp_path / "fold.csv.rejected.csv", encoding="utf-8", newline="") as file:
        assert list(csv.reader(file)) == [
            ["line", "reason", "raw"],
            ["6", "correctness must be 0 or 1, not '7'", "1,7"],
        ]


def test_the_report_goes_where_it_is_asked(course, tmp_path):
    # given
    path = tmp_path / "answers.csv"
    path.write_text("student,item,skills,correct,timestamp\ns1,p1,,1,2026-01-05T10:00:00Z\n")
    report = tmp_path / "out" / "rejected.csv"
    report.parent.mkdir()

    # when
    output = import_interactions(
        str(path),
        "--course",
        "algebra",
        "--format",
        "csv",
        "--skip-invalid",
        "--report",
        str(report),
    )

    # then
    assert output == (
        "answers.csv into algebra: 1 read, 0 imported, 0 already present, 1 rejected; "
        f"created 0 students, 0 items, 0 skills; rejected rows in {report}\n"
    )
    assert report.read_text().splitlines() == [
        "line,reason,raw",
        "2,item 'p1' is not in course 'algebra' and no skill is named for it,"
        '"s1,p1,,1,2026-01-05T10:00:00Z"',
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--course", "algebra", "--format", "csv", "--akt-lines", "3"],
            "--akt-lines applies to --format akt only",
        ),
        (
            ["--course", "algebra", "--format", "csv", "--report", "r.csv"],
            "--report needs --skip-invalid (without it a bad row stops all)",
        ),
        (["--course", "geometry", "--format", "csv"], "there is no course with slug 'geometry'"),
    ],
)
def test_wrong_arguments_are_refused(course, arguments, message):
    # when
    with pytest.raises(CommandError) as error:
        import_interactions(str(SAMPLES / "sample.csv"), *arguments)

    # then
    assert str(error.value) == message
    assert Interaction.objects.count() == 0


def test_a_missing_file_is_named(course, tmp_path):
    # when
    with pytest.raises(CommandError) as error:
        import_interactions(str(tmp_path / "nowhere.csv"), "--course", "algebra", "--format", "csv")

    # then
    assert str(error.value) == (
        f"{tmp_path / 'nowhere.csv'}: file {tmp_path / 'nowhere.csv'} does not exist; "
        "nothing was imported"
    )
