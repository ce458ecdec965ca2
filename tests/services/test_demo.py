"""The demo school: ``load_demo`` on the packaged samples, and ``demo_load`` on tiny files."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from edu_dl.models import (
    Assessment,
    AssessmentItem,
    Course,
    Enrollment,
    Interaction,
    Item,
    ModelVersion,
    Resource,
    ResourceSkill,
    Response,
    Skill,
    Submission,
    TrainingRun,
)
from edu_dl.services.demo import DemoPasswords, demo_load
from edu_dl.services.errors import ValidationFailed

PASSWORDS = DemoPasswords(admin="a-pass", teacher="t-pass", assistant="s-pass", student="st-pass")
TODAY = date(2026, 12, 1)
COUNTED_MODELS = [
    Course,
    Enrollment,
    Skill,
    Item,
    Item.skills.through,
    Interaction,
    Resource,
    ResourceSkill,
    Assessment,
    AssessmentItem,
    Submission,
    Response,
    TrainingRun,
]


def row_counts() -> dict[str, int]:
    counts = {model.__name__: model.objects.count() for model in COUNTED_MODELS}
    counts["User"] = get_user_model().objects.count()
    return counts


def write_tiny_demo_data(folder: Path, *, students: int = 3, answers: int = 20) -> Path:
    """Demo files in the packaged format: ``students`` x ``answers`` answers, 5 graded texts."""
    folder.mkdir()
    history = io.StringIO()
    writer = csv.writer(history, lineterminator="\n")
    writer.writerow(["student", "item", "skills", "correct", "timestamp"])
    for student in range(students):
        for position in range(answers):
            writer.writerow(
                [
                    f"a09-{100 + student}",
                    f"a09-p{position % 7}",
                    "Slope;Intercept" if position % 7 == 0 else "Slope",
                    (student + position) % 2,
                    f"2026-11-{10 + position // 10:02d}T14:{position % 10:02d}:00Z",
                ]
            )
    (folder / "assist2009_sample.csv.gz").write_bytes(gzip.compress(history.getvalue().encode()))
    texts = ["Id\tEssaySet\tScore1\tScore2\tEssayText"] + [
        f'{number}\t1\t{number % 4}\t{(number + 1) % 4}\tAnswer number {number}, with "quotes"'
        for number in range(1, 6)
    ]
    (folder / "asap_sas_set1.tsv.gz").write_bytes(gzip.compress("\n".join(texts).encode()))
    question = {
        "title": "Acid rain",
        "prompt": "What else would you need?",
        "reference_answer": "The amount of vinegar.",
        "min_score": 0,
        "max_score": 3,
    }
    (folder / "asap_sas_set1_question.json").write_text(json.dumps(question))
    (folder / "resources.csv").write_text(
        "external_id,title,kind,url,skills,difficulty,minutes,body\n"
        "demo-slope-reading,Slope: the key idea,reading,,Slope,0.2,8,Rise over run.\n"
        "demo-lines-exercise,Lines: practice,exercise,,Slope;Intercept,0.6,15,Ten questions.\n"
    )
    return folder


@pytest.mark.django_db
def test_load_demo_twice_builds_the_school_once(monkeypatch):
    # given
    monkeypatch.setenv("EDU_DL_DEMO_TEACHER_PASSWORD", "from-the-environment")
    first_output, second_output = io.StringIO(), io.StringIO()

    # when
    call_command("load_demo", stdout=first_output)
    counts_after_first = row_counts()
    call_command("load_demo", stdout=second_output)

    # then
    assert counts_after_first == {
        "Course": 2,
        "Enrollment": 2 * 2 + 240 + 40,
        "Skill": 96 + 1,
        "Item": 8317 + 1,
        "Item_skills": 9858 + 1,
        "Interaction": 18624,
        "Resource": 192,
        "ResourceSkill": 192,
        "Assessment": 10,
        "AssessmentItem": 10,
        "Submission": 400,
        "Response": 400,
        "TrainingRun": 2,
        "User": 3 + 240,
    }
    assert row_counts() == counts_after_first
    assert "Created: 0 students, 0 courses, 0 enrollments, 0 skills, 0 items" in (
        second_output.getvalue()
    )
    for output in (first_output.getvalue(), second_output.getvalue()):
        assert "teacher    demo-teacher     from-the-environment" in output
        assert "admin      admin            demo-admin" in output
        assert "student    a09-70679        demo-student" in output
    teacher = get_user_model().objects.get(username="demo-teacher")
    assert teacher.check_password("from-the-environment")
    assert get_user_model().objects.get(username="admin").is_superuser
    run = TrainingRun.objects.get(kind="kt")
    assert (run.kind, run.course.slug, run.status, run.requested_by) == (
        "kt",
        "algebra-demo",
        "queued",
        teacher,
    )
    grader_run = TrainingRun.objects.get(kind="grader")
    assert (grader_run.item.kind, grader_run.status, grader_run.requested_by) == (
        "short_answer",
        "queued",
        teacher,
    )
    assert f"Short-answer grader training run #{grader_run.pk}: queued" in first_output.getvalue()


@pytest.mark.django_db
def test_demo_load_keeps_each_history_in_order_ending_yesterday(tmp_path):
    # given
    data_dir = write_tiny_demo_data(tmp_path / "demo", students=3, answers=20)

    # when
    result = demo_load(passwords=PASSWORDS, data_dir=data_dir, today=TODAY)

    # then
    history = list(
        Interaction.objects.filter(student__username="a09-101").order_by("timestamp", "pk")
    )
    assert [row.external_id for row in history] == [f"a09-101:{n}" for n in range(20)]
    assert [row.correct for row in history] == [(1 + n) % 2 == 1 for n in range(20)]
    assert [row.item.external_id for row in history[:8]] == [
        "a09-p0", "a09-p1", "a09-p2", "a09-p3", "a09-p4", "a09-p5", "a09-p6", "a09-p0",
    ]  # fmt: skip
    assert history[0].timestamp == datetime(2026, 11, 29, 14, 0, tzinfo=UTC)
    assert history[-1].timestamp == datetime(2026, 11, 30, 14, 9, tzinfo=UTC)
    slope, intercept = (Skill.objects.get(name=name) for name in ("Slope", "Intercept"))
    assert history[0].skill_ids == sorted([slope.pk, intercept.pk])
    assert history[1].skill_ids == [slope.pk]
    assert {row.source for row in history} == {"import"}
    item = Item.objects.get(course=result.math_course, external_id="a09-p0")
    assert (item.kind, item.is_active, set(item.skills.all())) == (
        "short_answer",
        False,
        {slope, intercept},
    )


@pytest.mark.django_db
def test_demo_load_imports_the_texts_as_released_teacher_grades(tmp_path):
    # given
    data_dir = write_tiny_demo_data(tmp_path / "demo", students=3, answers=20)

    # when
    result = demo_load(passwords=PASSWORDS, data_dir=data_dir, today=TODAY)

    # then
    item = Item.objects.get(course=result.science_course)
    assert (item.kind, item.min_score, item.max_score, item.reference_answer) == (
        "short_answer",
        0.0,
        3.0,
        "The amount of vinegar.",
    )
    responses = Response.objects.order_by("submission__idempotency_key")
    assert [(r.answer, r.score) for r in responses] == [
        (f'Answer number {n}, with "quotes"', float(n % 4)) for n in range(1, 6)
    ]
    assert {(r.status, r.grade_source, r.released, r.reviewed_by.username) for r in responses} == {
        ("graded", "teacher", True, "demo-teacher")
    }
    pairs = list(Submission.objects.values_list("student", "assessment"))
    assert len(pairs) == len(set(pairs)) == 5
    assert Assessment.objects.filter(course=result.science_course).count() == 2  # 5 texts, 3 pupils
    assert {s.submitted_at < s.assessment.due_at for s in Submission.objects.all()} == {True}


@pytest.mark.django_db
def test_demo_load_asks_for_no_training_when_a_model_is_active(tmp_path):
    # given
    data_dir = write_tiny_demo_data(tmp_path / "demo", students=3, answers=20)
    result = demo_load(passwords=PASSWORDS, data_dir=data_dir, today=TODAY, request_training=False)
    ModelVersion.objects.create(
        kind="kt",
        scope_type="course",
        course=result.math_course,
        scope_key=f"course:{result.math_course.pk}",
        version=1,
        status="active",
        architecture="dkt",
        artifact_path="kt/1.pt",
        artifact_sha256="0" * 64,
        artifact_size=1,
        data_fingerprint="0" * 64,
    )

    # when
    again = demo_load(passwords=PASSWORDS, data_dir=data_dir, today=TODAY)

    # then
    assert again.training_run is None
    assert TrainingRun.objects.count() == 0
    assert set(again.created.values()) == {0}


@pytest.mark.django_db
def test_demo_load_with_a_missing_file_creates_nothing(tmp_path):
    # given
    data_dir = write_tiny_demo_data(tmp_path / "demo")
    (data_dir / "asap_sas_set1.tsv.gz").unlink()
    before = row_counts()

    # when
    with pytest.raises(ValidationFailed) as error:
        demo_load(passwords=PASSWORDS, data_dir=data_dir, today=TODAY)

    # then
    assert error.value.field == "data_dir"
    assert error.value.message == f"demo data file {data_dir / 'asap_sas_set1.tsv.gz'} is missing"
    assert row_counts() == before
