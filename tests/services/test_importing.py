"""Importing answer histories: csv, akt and dkt files and API records, through the import service.

Every test runs on the database of the run: SQLite by default (``bulk_create``), PostgreSQL
when ``DATABASE_URL`` names one (``COPY``); the ``writer`` tests also force ``bulk_create`` on
PostgreSQL, so both ways of writing are tried wherever the suite runs.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from edu_dl.models import Course, Enrollment, Interaction, Item, Skill
from edu_dl.services import importing
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.importing import (
    ImportFailed,
    Rejection,
    interactions_import,
    interactions_import_records,
)
from tests.conftest import uses_postgres
from tests.factories import (
    CourseFactory,
    EnrollmentFactory,
    ItemFactory,
    SkillFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

REPOSITORY = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, tzinfo=UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
CSV_HEADER = "student,item,skills,correct,timestamp,attempt,duration_s\n"


@pytest.fixture
def course() -> Course:
    return CourseFactory(slug="algebra")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def run_import(
    course: Course, path: Path, format: str = "csv", **options
) -> importing.ImportResult:
    return interactions_import(
        course=course, path_or_handle=path, format=format, now=NOW, **options
    )


def table_counts() -> dict[str, int]:
    return {
        "Interaction": Interaction.objects.count(),
        "User": get_user_model().objects.count(),
        "Enrollment": Enrollment.objects.count(),
        "Skill": Skill.objects.count(),
        "Item": Item.objects.count(),
        "Item_skills": Item.skills.through.objects.count(),
    }


def history(username: str) -> list[tuple]:
    """(item external id, skill names, correct, timestamp) of a student's answers, in order."""
    names = dict(Skill.objects.values_list("pk", "name"))
    return [
        (
            row.item.external_id if row.item else None,
            [names[pk] for pk in row.skill_ids],
            row.correct,
            row.timestamp,
        )
        for row in Interaction.objects.filter(student__username=username)
        .select_related("item")
        .order_by("timestamp", "pk")
    ]


def counts(result: importing.ImportResult) -> tuple[int, ...]:
    return (
        result.read,
        result.imported,
        result.already_present,
        result.rejected,
        result.students_created,
        result.items_created,
        result.skills_created,
    )


def micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def file_id(*lines: str) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


# --- csv ------------------------------------------------------------------------------------------


def test_a_csv_file_creates_the_missing_students_items_and_skills_and_stores_each_answer(
    course, tmp_path
):
    # given
    path = write(
        tmp_path,
        "answers.csv",
        CSV_HEADER + "s1,p1,Fractions;Decimals,1,2026-11-01T10:00:00Z,1,12.5\n"
        "s1,p2,Decimals,0,2026-11-01T10:05:00+01:00,,\n"
        "\n"
        "s2,p1,,true,2026-11-02T08:00:00,2,\n",
    )

    # when
    result = run_import(course, path)

    # then
    assert counts(result) == (3, 3, 0, 0, 2, 2, 2)
    assert (result.rejections, result.file_id, result.report_path) == ([], "", None)
    s1, s2 = (get_user_model().objects.get(username=f"algebra-s{n}") for n in (1, 2))
    assert (s1.has_usable_password(), s2.has_usable_password()) == (False, False)
    assert set(Enrollment.objects.values_list("user__username", "role", "external_id")) == {
        ("algebra-s1", "student", "s1"),
        ("algebra-s2", "student", "s2"),
    }
    fractions, decimals = (
        Skill.objects.get(course=course, name=n) for n in ("Fractions", "Decimals")
    )
    assert (fractions.external_id, decimals.external_id) == ("Fractions", "Decimals")
    p1, p2 = (Item.objects.get(course=course, external_id=key) for key in ("p1", "p2"))
    assert (p1.kind, p1.is_active, p1.title, set(p1.skills.all())) == (
        "short_answer",
        False,
        "Imported item p1",
        {fractions, decimals},
    )
    assert set(p2.skills.all()) == {decimals}
    first = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert history("algebra-s1") == [  # skills are listed by pk: in order of first use
        ("p2", ["Decimals"], False, datetime(2026, 11, 1, 9, 5, tzinfo=UTC)),
        ("p1", ["Fractions", "Decimals"], True, first),
    ]
    rows = Interaction.objects.order_by("timestamp")
    assert [
        (row.student, row.item, row.skill_ids, row.attempt, row.duration_s, row.source)
        for row in rows
    ] == [
        (s1, p2, [decimals.pk], None, None, "import"),
        (s1, p1, sorted([fractions.pk, decimals.pk]), 1, 12.5, "import"),
        (s2, p1, sorted([fractions.pk, decimals.pk]), 2, None, "import"),
    ]
    assert rows[1].external_id == f"t:{s1.pk}:{p1.pk}:{micros(first)}"


def test_importing_the_same_csv_file_again_adds_nothing(course, tmp_path):
    # given
    path = write(
        tmp_path,
        "answers.csv",
        CSV_HEADER + "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,\n"
        "s2,p1,Fractions,0,2026-11-01T10:00:00Z,,\n",
    )
    run_import(course, path)
    before = table_counts()

    # when
    again = run_import(course, path)

    # then
    assert counts(again) == (2, 0, 2, 0, 0, 0, 0)
    assert table_counts() == before


def test_overlapping_csv_exports_add_only_the_answers_not_stored_yet(course, tmp_path):
    # given
    rows = [
        "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,\n",
        "s1,p2,Fractions,0,2026-11-02T10:00:00Z,,\n",
        "s1,p3,Fractions,1,2026-11-03T10:00:00Z,,\n",
    ]
    run_import(course, write(tmp_path, "october.csv", CSV_HEADER + rows[0] + rows[1]))

    # when
    result = run_import(course, write(tmp_path, "november.csv", CSV_HEADER + rows[1] + rows[2]))

    # then
    assert counts(result) == (2, 1, 1, 0, 0, 1, 0)
    assert [entry[0] for entry in history("algebra-s1")] == ["p1", "p2", "p3"]


def test_a_row_repeated_inside_a_csv_file_is_stored_once(course, tmp_path):
    # given
    row = "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,\n"
    path = write(
        tmp_path,
        "answers.csv",
        CSV_HEADER + row + "s1,p2,Fractions,0,2026-11-01T11:00:00Z,,\n" + row,
    )

    # when
    result = run_import(course, path)

    # then
    assert counts(result) == (3, 2, 1, 0, 1, 2, 1)
    assert Interaction.objects.count() == 2


def test_students_are_matched_by_their_external_id_then_by_username_within_the_course(
    course, tmp_path
):
    # given
    ann = EnrollmentFactory(course=course, user__username="ann", external_id="A-1").user
    bob = EnrollmentFactory(course=course, user__username="bob").user
    carl = UserFactory(username="carl")  # an account, but not in this course
    EnrollmentFactory(user=carl, course=CourseFactory(slug="other"), external_id="carl")
    path = write(
        tmp_path,
        "answers.csv",
        CSV_HEADER + "A-1,p1,Fractions,1,2026-11-01T10:00:00Z,,\n"
        "bob,p1,Fractions,1,2026-11-01T10:00:00Z,,\n"
        "carl,p1,Fractions,1,2026-11-01T10:00:00Z,,\n",
    )

    # when
    result = run_import(course, path)

    # then
    assert result.students_created == 1
    students = list(
        Interaction.objects.order_by("student__username").values_list(
            "student__username", flat=True
        )
    )
    assert students == ["algebra-carl", "ann", "bob"]
    assert Interaction.objects.filter(student__in=[ann, bob]).count() == 2
    assert not Enrollment.objects.filter(user=carl, course=course).exists()
    assert (
        Enrollment.objects.get(course=course, user__username="algebra-carl").external_id == "carl"
    )


def test_a_new_students_username_is_made_valid_and_numbered_when_taken(course, tmp_path):
    # given
    UserFactory(username="algebra-s1")  # not in the course
    path = write(
        tmp_path,
        "answers.csv",
        CSV_HEADER + "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,\n"
        "Ann Lee/3,p1,Fractions,1,2026-11-01T10:00:00Z,,\n",
    )

    # when
    run_import(course, path)

    # then
    assert set(
        Enrollment.objects.filter(course=course).values_list("external_id", "user__username")
    ) == {("s1", "algebra-s1-2"), ("Ann Lee/3", "algebra-Ann-Lee-3")}


def test_an_id_of_someone_enrolled_as_teacher_stops_the_import_and_nothing_changes(
    course, tmp_path
):
    # given
    EnrollmentFactory(course=course, user__username="tess", role="teacher")
    path = write(
        tmp_path,
        "answers.csv",
        CSV_HEADER + "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,\n"
        "tess,p1,Fractions,1,2026-11-01T10:00:00Z,,\n",
    )
    before = table_counts()

    # when
    with pytest.raises(ImportFailed) as error:
        run_import(course, path)

    # then
    assert error.value.message == (
        "line 3: student 'tess' is enrolled in 'algebra' as teacher, not as a student"
    )
    assert (error.value.line, error.value.field) == (3, "file")
    assert table_counts() == before


def test_skills_are_matched_by_external_id_then_by_name(course, tmp_path):
    # given
    fractions = SkillFactory(course=course, name="Fractions")
    decimals = SkillFactory(course=course, name="Decimals (grade 5)", external_id="DEC")
    path = write(
        tmp_path, "answers.csv", CSV_HEADER + "s1,p1,Fractions;DEC,1,2026-11-01T10:00:00Z,,\n"
    )

    # when
    result = run_import(course, path)

    # then
    assert result.skills_created == 0
    assert Interaction.objects.get().skill_ids == sorted([fractions.pk, decimals.pk])
    assert set(Item.objects.get(external_id="p1").skills.all()) == {fractions, decimals}


def test_a_row_without_skills_takes_its_items_skills(course, tmp_path):
    # given
    slope = SkillFactory(course=course, name="Slope")
    ItemFactory(course=course, external_id="known", skills=[slope])
    path = write(
        tmp_path,
        "answers.csv",
        CSV_HEADER + "s1,known,,1,2026-11-01T10:00:00Z,,\n"
        "s1,new,Area,1,2026-11-01T11:00:00Z,,\n"
        "s1,new,Volume,1,2026-11-01T12:00:00Z,,\n"
        "s1,new,,0,2026-11-01T13:00:00Z,,\n",
    )

    # when
    run_import(course, path)

    # then
    assert [(entry[0], entry[1]) for entry in history("algebra-s1")] == [
        ("known", ["Slope"]),
        ("new", ["Area"]),
        ("new", ["Volume"]),
        ("new", ["Area", "Volume"]),
    ]


def test_an_unknown_item_with_no_skill_stops_the_import_and_nothing_changes(course, tmp_path):
    # given
    path = write(
        tmp_path,
        "answers.csv",
        CSV_HEADER + "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,\ns1,p2,,1,2026-11-01T11:00:00Z,,\n",
    )
    before = table_counts()

    # when
    with pytest.raises(ImportFailed) as error:
        run_import(course, path)

    # then
    assert (
        error.value.message
        == "line 3: item 'p2' is not in course 'algebra' and no skill is named for it"
    )
    assert table_counts() == before


# --- akt and dkt ----------------------------------------------------------------------------------


def test_an_akt_file_with_four_lines_per_student_is_recognised_and_imported(course, tmp_path):
    # given
    path = write(
        tmp_path,
        "assist_test1.csv",
        "891,78276\n7410,7411,7410,\n37,54,37,\n1,0,1,\n892,78277\n7412\n54\n0\n",
    )

    # when
    result = run_import(course, path, "akt")

    # then
    assert counts(result) == (4, 4, 0, 0, 2, 3, 2)
    assert result.file_id == file_id("891,78276", "7410,7411,7410", "37,54,37", "1,0,1")
    second = timedelta(seconds=1)
    assert history("algebra-78276") == [
        ("7410", ["37"], True, EPOCH),
        ("7411", ["54"], False, EPOCH + second),
        ("7410", ["37"], True, EPOCH + 2 * second),
    ]
    assert history("algebra-78277") == [("7412", ["54"], False, EPOCH)]
    assert set(Item.objects.get(external_id="7410").skills.values_list("name", flat=True)) == {"37"}
    keys = list(
        Interaction.objects.filter(student__username="algebra-78276")
        .order_by("timestamp")
        .values_list("external_id", flat=True)
    )
    student_pk = get_user_model().objects.get(username="algebra-78276").pk
    assert [key.rsplit(":", 1)[0] for key in keys] == [f"q:{student_pk}:{n}" for n in range(3)]
    assert {len(key.rsplit(":", 1)[1]) for key in keys} == {16}


def test_an_akt_file_with_three_lines_per_student_and_length_headers_is_imported(course, tmp_path):
    # given
    path = write(tmp_path, "assist2015.csv", "3\n37,54,37\n1,0,1\n2\n54,54\n0,1\n")
    expected_id = file_id("3", "37,54,37", "1,0,1")

    # when
    result = run_import(course, path, "akt")

    # then
    assert counts(result) == (5, 5, 0, 0, 2, 0, 2)
    assert result.file_id == expected_id
    assert set(Enrollment.objects.values_list("external_id", "user__username")) == {
        (f"{expected_id}#1", f"algebra-{expected_id}-1"),
        (f"{expected_id}#2", f"algebra-{expected_id}-2"),
    }
    assert history(f"algebra-{expected_id}-2") == [
        (None, ["54"], False, EPOCH),
        (None, ["54"], True, EPOCH + timedelta(seconds=1)),
    ]


def test_akt_headers_are_student_ids_unless_every_block_starts_with_its_length(course, tmp_path):
    # given: in the first file, student 3 happens to have 3 answers
    ids = write(tmp_path, "ids.csv", "5\n1,2,3\n1,1,0\n3\n1,2,3\n0,0,1\n")
    lengths = write(tmp_path, "lengths.csv", "3\n1,2,3\n1,1,0\n2\n1,2\n0,1\n")

    # when
    run_import(course, ids, "akt", akt_lines=3)
    run_import(course, lengths, "akt", akt_lines=3)

    # then
    anonymous = file_id("3", "1,2,3", "1,1,0")
    assert set(Enrollment.objects.values_list("external_id", flat=True)) == {
        "5",
        "3",
        f"{anonymous}#1",
        f"{anonymous}#2",
    }


def test_an_ambiguous_akt_file_needs_akt_lines(course, tmp_path):
    # given: one answer per student, so 3 and 4 lines per block both fit
    path = write(tmp_path, "tiny.csv", "1\n5\n1\n1\n7\n0\n")
    before = table_counts()

    # when
    with pytest.raises(ImportFailed) as error:
        run_import(course, path, "akt")
    result = run_import(course, path, "akt", akt_lines=3)

    # then
    assert error.value.message == (
        "line 1: cannot tell whether the file has 3 or 4 lines per student; pass --akt-lines 3 or 4"
    )
    assert counts(result) == (2, 2, 0, 0, 2, 0, 2)
    assert table_counts()["Interaction"] == before["Interaction"] + 2


def test_the_same_akt_file_renamed_and_compressed_adds_nothing_and_another_file_adds_students(
    course, tmp_path
):
    # given
    text = "3\n37,54,37\n1,0,1\n2\n54,54\n0,1\n"
    run_import(course, write(tmp_path, "first.csv", text), "akt")
    copy = tmp_path / "renamed.csv.gz"
    copy.write_bytes(gzip.compress(text.replace("\n", ",\r\n").encode()))
    before = table_counts()

    # when
    again = run_import(course, copy, "akt")
    other = run_import(course, write(tmp_path, "other.csv", "2\n37,37\n1,1\n"), "akt")

    # then
    assert counts(again) == (5, 0, 5, 0, 0, 0, 0)
    assert counts(other) == (2, 2, 0, 0, 1, 0, 0)
    assert table_counts()["User"] == before["User"] + 1


def test_a_grown_akt_export_adds_only_the_new_answers_and_another_sequence_is_kept(
    course, tmp_path
):
    # given
    run_import(course, write(tmp_path, "june.csv", "1,700\n37,54,37\n1,0,1\n"), "akt")

    # when
    grown = run_import(
        course, write(tmp_path, "july.csv", "1,700\n37,54,37,54,54\n1,0,1,1,1\n"), "akt"
    )
    other = run_import(course, write(tmp_path, "other_set.csv", "9,700\n37,54\n0,0\n"), "akt")

    # then
    assert counts(grown) == (5, 2, 3, 0, 0, 0, 0)
    assert counts(other) == (2, 2, 0, 0, 0, 0, 0)
    assert Interaction.objects.filter(student__username="algebra-700").count() == 7


def test_a_dkt_builder_file_is_imported(course, tmp_path):
    # given: the DKT paper's files end their lines with commas
    path = write(tmp_path, "builder_test.csv", "3\n1,2,1,\n1,0,1,\n1\n7,\n0,\n")

    # when
    result = run_import(course, path, "dkt")

    # then
    anonymous = file_id("3", "1,2,1", "1,0,1")
    assert counts(result) == (4, 4, 0, 0, 2, 0, 3)
    assert history(f"algebra-{anonymous}-1") == [
        (None, ["1"], True, EPOCH),
        (None, ["2"], False, EPOCH + timedelta(seconds=1)),
        (None, ["1"], True, EPOCH + timedelta(seconds=2)),
    ]


# --- bad rows stop the import, and nothing changes ------------------------------------------------


@pytest.mark.parametrize(
    ("format", "text", "message"),
    [
        pytest.param(
            "akt3",
            "1,700\n37,54,37\n1,0,1\n2,701\n37,54,37\n1,2,1\n",
            "line 6: correctness must be 0 or 1, not '2'",
            id="wrong flag",
        ),
        pytest.param(
            "akt3",
            "1,700\n37,54,37\n1,0,1\n2,701\n37,54\n1,0,1\n",
            "line 5: 2 ids but 3 correctness flags on line 6",
            id="lengths differ",
        ),
        pytest.param(
            "akt3",
            "1,700\n37,54,37\n1,0,1\n2,701\n37,54\n",
            "line 4: the file ends inside a student block (2 of 3 lines)",
            id="truncated block",
        ),
        pytest.param(
            "akt3",
            "2\n1,2\n0,1\n" * 30 + "5\n1,2\n0,1\n",  # beyond the lines that decide
            "line 91: the blocks of this file start with their number of answers (2 here), not '5'",
            id="length header differs",
        ),
        pytest.param(
            "dkt",
            "3\n1,2,1\n1,0,1\n5\n1,2,1\n1,0,1\n",
            "line 4: a dkt block starts with its number of answers (3), not '5'",
            id="dkt header",
        ),
        pytest.param(
            "csv",
            CSV_HEADER
            + "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,\ns1,p2,Fractions,1,yesterday,,\n",
            "line 3: timestamp 'yesterday' is not ISO 8601",
            id="bad timestamp",
        ),
        pytest.param(
            "csv",
            "student,item,skills,correct,timestamp,score\ns1,p1,Fractions,1,2026-11-01T10:00:00Z,3\n",
            "line 1: unknown column(s) score",
            id="unknown column",
        ),
        pytest.param(
            "csv",
            CSV_HEADER + "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,\n"
            "s1,p1,Fractions,maybe,2026-11-01T11:00:00Z,,\n",
            "line 3: correct must be 0/1 (or true/false), not 'maybe'",
            id="wrong flag in csv",
        ),
        pytest.param(
            "csv",
            CSV_HEADER + "s1,p1,Fractions,1,2026-12-01T00:06:00Z,,\n",
            "line 2: timestamp 2026-12-01T00:06:00+00:00 is in the future",
            id="future",
        ),
        pytest.param(
            "csv",
            CSV_HEADER + "s1,p1,Fractions,1,2026-11-01T10:00:00Z,-1,\n",
            "line 2: attempt is negative",
            id="negative attempt",
        ),
        pytest.param(
            "csv",
            CSV_HEADER + "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,nan\n",
            "line 2: duration_s 'nan' is not a finite number",
            id="duration not finite",
        ),
        pytest.param(
            "csv",
            CSV_HEADER + "s1,,,1,2026-11-01T10:00:00Z,,\n",
            "line 2: the row names neither an item nor a skill",
            id="nothing answered",
        ),
        pytest.param(
            "csv",
            CSV_HEADER + f"s1,{'p' * 256},Fractions,1,2026-11-01T10:00:00Z,,\n",
            "line 2: item id is 256 characters long; at most 255 are allowed",
            id="item id too long",
        ),
    ],
)
def test_a_bad_row_stops_the_import_with_its_line_and_reason_and_nothing_changes(
    course, tmp_path, format, text, message
):
    # given
    path = write(tmp_path, "bad.csv", text)
    before = table_counts()

    # when: (akt3: an akt file with --akt-lines 3; a bad block defeats the detection)
    with pytest.raises(ImportFailed) as error:
        if format == "akt3":
            run_import(course, path, "akt", akt_lines=3)
        else:
            run_import(course, path, format)

    # then
    assert error.value.message == message
    assert table_counts() == before


def test_a_file_that_is_not_utf8_stops_the_import(course, tmp_path):
    # given
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        (
            CSV_HEADER
            + "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,\nJos\xe9,p1,x,1,2026-11-01T10:00:00Z,,\n"
        ).encode("latin-1")
    )
    before = table_counts()

    # when
    with pytest.raises(ImportFailed) as error:
        run_import(course, path)

    # then
    assert error.value.message == "line 3: the file is not UTF-8 text"
    assert table_counts() == before


def test_wrong_options_are_refused_before_anything_is_read(course, tmp_path):
    # given
    path = write(tmp_path, "answers.csv", CSV_HEADER)

    # when
    problems = []
    for options in (
        {"format": "xlsx"},
        {"format": "csv", "akt_lines": 3},
        {"format": "akt", "akt_lines": 5},
        {"format": "csv", "report_path": tmp_path / "report.csv"},
        {"format": "csv", "source": "fax"},
    ):
        with pytest.raises(ValidationFailed) as error:
            interactions_import(course=course, path_or_handle=path, **options)
        problems.append((error.value.field, error.value.message))
    with pytest.raises(ValidationFailed) as missing:
        interactions_import(course=course, path_or_handle=tmp_path / "nowhere.csv", format="csv")

    # then
    assert problems == [
        ("format", "format 'xlsx' is not one of csv, akt, dkt"),
        ("akt_lines", "akt_lines is 3 or 4, and applies to the akt format only"),
        ("akt_lines", "akt_lines is 3 or 4, and applies to the akt format only"),
        ("report_path", "a report is written only when invalid rows are skipped"),
        ("source", "source 'fax' is not one of response, import, xapi, lti, api"),
    ]
    assert missing.value.message == f"file {tmp_path / 'nowhere.csv'} does not exist"
    assert not (tmp_path / "report.csv").exists()


# --- skipping invalid rows ------------------------------------------------------------------------


def test_skip_invalid_imports_the_valid_rows_and_reports_the_others(course, tmp_path):
    # given
    path = write(
        tmp_path,
        "answers.csv",
        CSV_HEADER + "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,\n"
        "s2,p1,Fractions,2,2026-11-01T10:00:00Z,,\n"
        "s3,p2,,1,2026-11-01T10:00:00Z,,\n"
        "s1,p3,Fractions,0,2026-11-01T11:00:00Z,,\n",
    )
    report = tmp_path / "rejected.csv"

    # when
    result = run_import(course, path, skip_invalid=True, report_path=report)

    # then
    assert counts(result) == (4, 2, 0, 2, 1, 2, 1)
    assert result.rejections == [
        Rejection(
            3,
            "correct must be 0/1 (or true/false), not '2'",
            "s2,p1,Fractions,2,2026-11-01T10:00:00Z,,",
        ),
        Rejection(
            4,
            "item 'p2' is not in course 'algebra' and no skill is named for it",
            "s3,p2,,1,2026-11-01T10:00:00Z,,",
        ),
    ]
    with open(report, encoding="utf-8", newline="") as file:
        assert list(csv.reader(file)) == [
            ["line", "reason", "raw"],
            [
                "3",
                "correct must be 0/1 (or true/false), not '2'",
                "s2,p1,Fractions,2,2026-11-01T10:00:00Z,,",
            ],
            [
                "4",
                "item 'p2' is not in course 'algebra' and no skill is named for it",
                "s3,p2,,1,2026-11-01T10:00:00Z,,",
            ],
        ]
    assert list(Enrollment.objects.values_list("external_id", flat=True)) == ["s1"]


def test_skip_invalid_drops_a_bad_akt_block_and_keeps_the_others(course, tmp_path):
    # given
    EnrollmentFactory(course=course, user__username="tess", role="teacher", external_id="701")
    path = write(
        tmp_path,
        "fold.csv",
        "1,700\n37,54\n1,0\n2,701\n37\n1\n3,702\n37,54\n1,3\n4,703\n54\n0\n",
    )

    # when
    result = run_import(course, path, "akt", akt_lines=3, skip_invalid=True)

    # then
    assert counts(result) == (4, 3, 0, 2, 2, 0, 2)
    assert result.rejections == [
        Rejection(
            4,
            "student '701' is enrolled in 'algebra' as teacher, not as a student "
            "(the student's block is skipped)",
            "2,701",
        ),
        Rejection(9, "correctness must be 0 or 1, not '3'", "1,3"),
    ]
    assert set(Enrollment.objects.filter(role="student").values_list("external_id", flat=True)) == {
        "700",
        "703",
    }


# --- records (the API's bulk endpoint) ------------------------------------------------------------


def test_records_follow_the_rules_of_csv_rows_and_share_their_keys(course, tmp_path):
    # given
    run_import(
        course,
        write(tmp_path, "answers.csv", CSV_HEADER + "s1,p1,Fractions,1,2026-11-01T10:00:00Z,,\n"),
    )
    records = [
        {
            "student": "s1",
            "item": "p1",
            "skills": ["Fractions"],
            "correct": True,
            "timestamp": "2026-11-01T10:00:00Z",
        },
        {
            "student": 42,
            "item": "p2",
            "skills": "Fractions;Area",
            "correct": 0,
            "timestamp": datetime(2026, 11, 2, tzinfo=UTC),
            "attempt": 2,
            "duration_s": 30,
        },
        {"student": "s1", "item": "p1", "correct": False, "timestamp": "2026-11-03T10:00:00"},
    ]

    # when
    result = interactions_import_records(course=course, records=records, source="import", now=NOW)

    # then
    assert counts(result) == (3, 2, 1, 0, 1, 1, 1)
    assert history("algebra-42") == [
        ("p2", ["Fractions", "Area"], False, datetime(2026, 11, 2, tzinfo=UTC))
    ]
    assert Interaction.objects.get(student__username="algebra-42").attempt == 2
    assert history("algebra-s1")[-1] == (
        "p1",
        ["Fractions"],
        False,
        datetime(2026, 11, 3, 10, tzinfo=UTC),
    )


def test_a_bad_record_stops_the_batch_with_its_position_and_nothing_changes(course):
    # given
    records = [
        {
            "student": "s1",
            "item": "p1",
            "skills": ["Fractions"],
            "correct": True,
            "timestamp": "2026-11-01T10:00:00Z",
        },
        {
            "student": "s1",
            "item": "p1",
            "skills": ["Fractions"],
            "correct": True,
            "timestamp": "2026-11-01T10:00:00Z",
            "score": 3,
        },
    ]
    before = table_counts()

    # when
    with pytest.raises(ImportFailed) as error:
        interactions_import_records(course=course, records=records, now=NOW)

    # then
    assert (error.value.message, error.value.field) == ("line 2: unknown field(s) score", "records")
    assert table_counts() == before


def test_skip_invalid_records_keeps_the_good_ones_and_lists_the_others(course):
    # given
    good = {
        "student": "s1",
        "item": "p1",
        "skills": ["Fractions"],
        "correct": True,
        "timestamp": "2026-11-01T10:00:00Z",
    }
    records = [
        good,
        {**good, "correct": "yes"},
        {**good, "timestamp": datetime(2026, 11, 1)},
        {**good, "attempt": -1},
        "not a record",
    ]

    # when
    result = interactions_import_records(course=course, records=records, skip_invalid=True, now=NOW)

    # then
    assert counts(result) == (5, 1, 0, 4, 1, 1, 1)
    assert [(r.line, r.reason) for r in result.rejections] == [
        (2, "correct must be true or false (or 1 or 0), not 'yes'"),
        (3, "timestamp 2026-11-01 00:00:00 has no time zone"),
        (4, "attempt must be a whole number from 0, not -1"),
        (5, "a record must be an object"),
    ]
    assert result.rejections[0].raw == (
        '{"student": "s1", "item": "p1", "skills": ["Fractions"], "correct": "yes", '
        '"timestamp": "2026-11-01T10:00:00Z"}'
    )
    assert Interaction.objects.get().source == "api"


# --- the two ways of writing ----------------------------------------------------------------------


@dataclass
class Writes:
    uses_copy: bool  # whether the import writes with PostgreSQL's COPY
    copies: list[str]  # the tables COPY wrote to, in order


@pytest.fixture(params=["the database's own", "bulk_create"])
def writes(request, monkeypatch) -> Writes:
    """The way of writing under test, with a record of the COPY statements it ran."""
    if request.param == "bulk_create":
        monkeypatch.setattr(importing, "_uses_copy", lambda: False)
    record = Writes(uses_copy=uses_postgres() and request.param != "bulk_create", copies=[])
    copy = importing._copy

    def recording_copy(cursor, sql, chunks):
        record.copies.append(sql.split(" (")[0])
        return copy(cursor, sql, chunks)

    monkeypatch.setattr(importing, "_copy", recording_copy)
    return record


INTERACTION_COPY = 'COPY "edu_dl_interaction"'
STAGING_COPY = "COPY edu_dl_import_staging"


def test_each_way_of_writing_stores_new_answers_and_skips_stored_ones(course, tmp_path, writes):
    # given
    rows = [f"s{n % 3},p{n % 4},k{n % 2},{n % 2},2026-11-01T10:{n:02d}:00Z,,\n" for n in range(12)]
    first = run_import(course, write(tmp_path, "first.csv", CSV_HEADER + "".join(rows[:6])))
    copies_of_first = list(writes.copies)
    writes.copies.clear()
    new_student = "s3,p1,k1,1,2026-11-02T10:00:00Z,,\n"

    # when: s0 to s2 have stored answers, s3 is new, and one row is in the file twice
    second = run_import(
        course, write(tmp_path, "second.csv", CSV_HEADER + "".join(rows) + rows[5] + new_student)
    )

    # then
    assert counts(first) == (6, 6, 0, 0, 3, 4, 2)
    assert counts(second) == (14, 7, 7, 0, 1, 0, 0)
    stored = Interaction.objects.values_list("student_id", "item_id", "timestamp", "external_id")
    assert len(stored) == 13
    assert {key for *_, key in stored} == {
        f"t:{student}:{item}:{micros(moment)}" for student, item, moment, _ in stored
    }
    if writes.uses_copy:
        assert copies_of_first == [INTERACTION_COPY]
        assert writes.copies == [INTERACTION_COPY, STAGING_COPY]
    else:
        assert (copies_of_first, writes.copies) == ([], [])


def test_a_key_repeated_among_new_students_falls_back_to_the_staging_table(
    course, tmp_path, writes
):
    # given
    row = "s1,p1,k1,1,2026-11-01T10:00:00Z,,\n"
    other = "s2,p1,k1,1,2026-11-01T10:00:00Z,,\n"
    path = write(tmp_path, "answers.csv", CSV_HEADER + row + other + row)

    # when
    result = run_import(course, path)

    # then
    assert counts(result) == (3, 2, 1, 0, 2, 1, 1)
    assert Interaction.objects.count() == 2
    assert writes.copies == ([INTERACTION_COPY, STAGING_COPY] if writes.uses_copy else [])


def test_the_import_service_does_not_load_torch_for_the_web_process():
    code = (
        "import sys, django; django.setup();"
        "import edu_dl.services.importing;"
        "print('torch' in sys.modules)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "lms_site.settings.test"}

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPOSITORY, env=env, capture_output=True, text=True
    )

    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr
