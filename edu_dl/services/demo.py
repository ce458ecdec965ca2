"""The demo school: two courses built from samples of real public data (``edu_dl/demo_data``).

- ``algebra-demo``: 240 real ASSISTments 2009-10 students with their answer histories (about
  18,600 answers to 8,300 problems, 96 real skill names), imported as Interactions, and a study
  catalogue of two resources per skill.
- ``science-demo``: ASAP-SAS question 1 (the acid-rain experiment) as a short-answer item, asked
  in ten lab checks; 400 real student answers, graded by their first rater, are the submissions
  of 40 of the same students.

Loading is idempotent: every row has a natural key (a username, a slug, an external id, a title,
a submission's idempotency key) and only what is missing is created. Demo accounts get known
passwords, so this is for demo sites only. See ``edu_dl/demo_data/SOURCE.md`` for the data.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from edu_dl.models import (
    Assessment,
    Course,
    Enrollment,
    Interaction,
    Item,
    ModelKind,
    Response,
    Skill,
    Submission,
    TrainingRun,
)
from edu_dl.services.catalogue import resources_import
from edu_dl.services.courses import (
    assessment_create,
    course_create,
    enrollment_create,
    item_create,
    skill_get_or_create,
)
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.importing import history_items_create
from edu_dl.services.interactions import InteractionRecord, interactions_record
from edu_dl.services.model_versions import model_version_active
from edu_dl.services.scopes import scope_resolve
from edu_dl.services.training import training_request

DEMO_DATA_DIR = Path(__file__).resolve().parent.parent / "demo_data"
MATH_COURSE_SLUG = "algebra-demo"
SCIENCE_COURSE_SLUG = "science-demo"
ADMIN_USERNAME = "admin"
TEACHER_USERNAME = "demo-teacher"
ASSISTANT_USERNAME = "demo-assistant"
# Hashing a password takes a good part of a second; students other than these cannot sign in.
STUDENTS_WITH_PASSWORD = 2
SCIENCE_STUDENTS = 40
SCIENCE_ITEM_EXTERNAL_ID = "asap-sas-1"
SUBMISSION_KEY_PREFIX = "demo-asap-sas-"
INTERACTION_BATCH = 2000

ASSIST_COLUMNS = ["student", "item", "skills", "correct", "timestamp"]
ASAP_COLUMNS = ["Id", "EssaySet", "Score1", "Score2", "EssayText"]


@dataclass(frozen=True)
class DemoPasswords:
    admin: str
    teacher: str
    assistant: str
    student: str


@dataclass(frozen=True)
class DemoLogin:
    role: str
    username: str
    password: str
    path: str  # where to sign in on the site


@dataclass
class DemoResult:
    math_course: Course
    science_course: Course
    logins: list[DemoLogin]
    # How many rows of each kind this run created (all zero when the demo was already loaded).
    created: dict[str, int] = field(default_factory=dict)
    # The knowledge-tracing run asked for (or already open); None when a model is active.
    training_run: TrainingRun | None = None
    grader_run: TrainingRun | None = None


@dataclass(frozen=True)
class AnswerRow:
    student: str
    item: str
    skills: tuple[str, ...]
    correct: bool
    timestamp: datetime


# --- reading the files ------------------------------------------------------------------------


def _rows(path: Path, *, columns: list[str], delimiter: str = ",") -> Iterator[dict[str, str]]:
    if not path.is_file():
        raise ValidationFailed(f"demo data file {path} is missing", field="data_dir")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
        if reader.fieldnames != columns:
            raise ValidationFailed(
                f"{path.name} has columns {reader.fieldnames}; expected {columns}",
                field="data_dir",
            )
        yield from reader


def _read_answers(data_dir: Path) -> list[AnswerRow]:
    return [
        AnswerRow(
            student=row["student"],
            item=row["item"],
            skills=tuple(name for name in row["skills"].split(";") if name),
            correct=row["correct"] == "1",
            timestamp=datetime.fromisoformat(row["timestamp"]),
        )
        for row in _rows(data_dir / "assist2009_sample.csv.gz", columns=ASSIST_COLUMNS)
    ]


def _read_asap(data_dir: Path) -> list[dict[str, str]]:
    # Answers hold quotation marks of their own: the file is plain tab-separated, never quoted.
    path = data_dir / "asap_sas_set1.tsv.gz"
    if not path.is_file():
        raise ValidationFailed(f"demo data file {path} is missing", field="data_dir")
    with gzip.open(path, "rt", encoding="utf-8") as file:
        header, *lines = file.read().splitlines()
    if header.split("\t") != ASAP_COLUMNS:
        raise ValidationFailed(f"{path.name} has an unexpected header", field="data_dir")
    return [dict(zip(ASAP_COLUMNS, line.split("\t"), strict=True)) for line in lines if line]


# --- people -----------------------------------------------------------------------------------


def _demo_user(
    *, username: str, password: str, first_name: str, last_name: str, superuser: bool = False
) -> tuple[AbstractBaseUser, bool]:
    """The named account, created if missing; its password is (re)set to the demo password."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        **{user_model.USERNAME_FIELD: username},
        defaults={
            "first_name": first_name,
            "last_name": last_name,
            "email": f"{username}@example.com",
        },
    )
    if superuser:
        user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    return user, created


def _students(usernames: list[str]) -> tuple[dict[str, AbstractBaseUser], int]:
    """The students' accounts by username, the missing ones created without a usable password."""
    user_model = get_user_model()
    username_field = user_model.USERNAME_FIELD
    existing = set(
        user_model.objects.filter(**{f"{username_field}__in": usernames}).values_list(
            username_field, flat=True
        )
    )
    missing = []
    for username in usernames:
        if username not in existing:
            user = user_model(**{username_field: username})
            user.set_unusable_password()
            missing.append(user)
    user_model.objects.bulk_create(missing, batch_size=500)
    by_name = {
        user.get_username(): user
        for user in user_model.objects.filter(**{f"{username_field}__in": usernames})
    }
    return by_name, len(missing)


def _enrol(*, users: list[AbstractBaseUser], course: Course, role: str) -> int:
    """Enrol those of ``users`` who are not in ``course`` yet; how many were enrolled."""
    enrolled = set(
        Enrollment.objects.filter(course=course, user__in=users).values_list("user_id", flat=True)
    )
    count = 0
    for user in users:
        if user.pk not in enrolled:
            external_id = (
                user.get_username().removeprefix("a09-") if role == Enrollment.Role.STUDENT else ""
            )
            enrollment_create(user=user, course=course, role=role, external_id=external_id)
            count += 1
    return count


def _course(*, slug: str, title: str, description: str) -> tuple[Course, bool]:
    existing = Course.objects.filter(slug=slug).first()
    if existing is not None:
        return existing, False
    return course_create(slug=slug, title=title, description=description), True


# --- the mathematics course (ASSISTments) -----------------------------------------------------


def _skills(*, course: Course, names: list[str]) -> tuple[dict[str, Skill], int]:
    skills: dict[str, Skill] = {}
    created_count = 0
    for name in names:
        skills[name], created = skill_get_or_create(course=course, name=name)
        created_count += created
    return skills, created_count


def _assistments_problem(external_id: str) -> tuple[str, str]:
    problem_id = external_id.removeprefix("a09-p")
    return (
        f"ASSISTments problem {problem_id}",
        f"Problem {problem_id} of the ASSISTments 2009-10 skill builders. Its text is not in the "
        "public data, only whether students answered it correctly.",
    )


def _problem_items(
    *, course: Course, answers: list[AnswerRow], skills: dict[str, Skill]
) -> tuple[dict[str, Item], int]:
    """One item per ASSISTments problem, carrying every skill it was tagged with.

    The public data hold no problem texts or answer keys: the items are the inactive short
    answers that stand for a question known only from its history (see
    :func:`~edu_dl.services.importing.history_items_create`, which imports use too).
    """
    skill_names: dict[str, list[str]] = {}
    for answer in answers:
        names = skill_names.setdefault(answer.item, [])
        names.extend(name for name in answer.skills if name not in names)
    created = history_items_create(
        course=course,
        skills_by_item={
            external_id: [skills[name] for name in names]
            for external_id, names in skill_names.items()
        },
        describe=_assistments_problem,
    )
    items = {
        item.external_id: item
        for item in Item.objects.filter(course=course, external_id__in=skill_names)
    }
    return items, created


def _interactions(
    *,
    course: Course,
    answers: list[AnswerRow],
    students: dict[str, AbstractBaseUser],
    items: dict[str, Item],
    skills: dict[str, Skill],
    shift: timedelta,
) -> int:
    """The answer histories as imported Interactions; key ``<username>:<position>``."""
    positions: dict[str, int] = {}
    records = []
    for answer in answers:
        position = positions.get(answer.student, 0)
        positions[answer.student] = position + 1
        records.append(
            InteractionRecord(
                student_id=students[answer.student].pk,
                item_id=items[answer.item].pk,
                skill_ids=tuple(skills[name].pk for name in answer.skills),
                correct=answer.correct,
                timestamp=answer.timestamp + shift,
                external_id=f"{answer.student}:{position}",
            )
        )
    return interactions_record(
        course=course,
        records=records,
        source=Interaction.Source.IMPORT,
        batch_size=INTERACTION_BATCH,
    )


def _resources(*, course: Course, data_dir: Path) -> int:
    """The study catalogue, imported like any catalogue file; how many resources were new."""
    path = data_dir / "resources.csv"
    if not path.is_file():
        raise ValidationFailed(f"demo data file {path} is missing", field="data_dir")
    return resources_import(course=course, path_or_handle=path).created


# --- the science course (ASAP-SAS question 1) -------------------------------------------------


def _science_item(*, course: Course, question: dict[str, Any]) -> tuple[Item, bool]:
    existing = Item.objects.filter(course=course, external_id=SCIENCE_ITEM_EXTERNAL_ID).first()
    if existing is not None:
        return existing, False
    skill, _ = skill_get_or_create(
        course=course,
        name="Designing a replicable experiment",
        description="Saying which quantities and conditions another person needs to repeat "
        "an experiment and get comparable results.",
    )
    item = item_create(
        course=course,
        kind=Item.Kind.SHORT_ANSWER,
        title=question["title"],
        prompt=question["prompt"],
        reference_answer=question["reference_answer"],
        min_score=question["min_score"],
        max_score=question["max_score"],
        skills=[skill],
        external_id=SCIENCE_ITEM_EXTERNAL_ID,
    )
    return item, True


def _lab_checks(
    *, course: Course, item: Item, count: int, today: date
) -> tuple[list[Assessment], int]:
    """``count`` weekly lab checks asking the same question, the last one closed yesterday."""
    assessments = []
    created = 0
    midnight = datetime.combine(today, time(0), tzinfo=timezone.get_current_timezone())
    for number in range(1, count + 1):
        title = f"Lab check {number}: replicating the acid-rain experiment"
        assessment = Assessment.objects.filter(course=course, title=title).first()
        if assessment is None:
            opens_at = midnight - timedelta(weeks=count + 1 - number) + timedelta(hours=8)
            assessment = assessment_create(
                course=course,
                title=title,
                description=(
                    "The same question after each lab session. The answers are real grade-10 "
                    "answers to ASAP-SAS question 1, shared out among the demo students."
                ),
                items=[item],
                opens_at=opens_at,
                due_at=opens_at + timedelta(days=5),
            )
            created += 1
        assessments.append(assessment)
    return assessments, created


def _graded_answers(
    *,
    item: Item,
    answers: list[dict[str, str]],
    students: list[AbstractBaseUser],
    assessments: list[Assessment],
    teacher: AbstractBaseUser,
) -> int:
    """The real answers as submissions graded by the teacher (score = ASAP-SAS Score1).

    Answer ``i`` goes to student ``i mod len(students)`` in lab check ``i div len(students)``:
    one answer per student per lab check. These are historic grades, imported as they are; the
    submission and grading services are for answers given in the app.
    """
    existing = set(
        Submission.objects.filter(
            assessment__in=assessments, idempotency_key__startswith=SUBMISSION_KEY_PREFIX
        ).values_list("idempotency_key", flat=True)
    )
    if len(answers) > len(students) * len(assessments):
        raise ValidationFailed(
            f"{len(answers)} answers do not fit {len(students)} students in "
            f"{len(assessments)} lab checks",
            field="answers",
        )
    planned = []
    for index, answer in enumerate(answers):
        key = f"{SUBMISSION_KEY_PREFIX}{answer['Id']}"
        if key in existing:
            continue
        student_number = index % len(students)
        assessment = assessments[index // len(students)]
        submitted_at = assessment.opens_at + timedelta(hours=2 + 2 * (student_number % 40))
        submission = Submission(
            student=students[student_number],
            assessment=assessment,
            status=Submission.Status.GRADED,
            submitted_at=submitted_at,
            idempotency_key=key,
        )
        planned.append((submission, answer))
    submissions = Submission.objects.bulk_create([submission for submission, _ in planned])
    Response.objects.bulk_create(
        [
            Response(
                submission=submission,
                item=item,
                answer=answer["EssayText"],
                status=Response.Status.GRADED,
                score=float(answer["Score1"]),
                grade_source=Response.GradeSource.TEACHER,
                released=True,
                reviewed_by=teacher,
                graded_at=submission.assessment.due_at + timedelta(days=1),
            )
            for submission, (_, answer) in zip(submissions, planned, strict=True)
        ],
        batch_size=500,
    )
    return len(submissions)


# --- the whole demo ---------------------------------------------------------------------------


def _kt_training(*, course: Course, teacher: AbstractBaseUser) -> TrainingRun | None:
    """Ask for a knowledge-tracing model unless the course has one (an open run is reused)."""
    scope = scope_resolve(kind=ModelKind.KT, course=course)
    if model_version_active(kind=ModelKind.KT, scope_key=scope.key) is not None:
        return None
    return training_request(kind=ModelKind.KT, course=course, requested_by=teacher)


def _grader_training(*, item: Item, teacher: AbstractBaseUser) -> TrainingRun | None:
    """Ask for the science question's grader (trained on the teachers' historic scores)."""
    scope = scope_resolve(kind=ModelKind.GRADER, item=item)
    if model_version_active(kind=ModelKind.GRADER, scope_key=scope.key) is not None:
        return None
    try:
        return training_request(kind=ModelKind.GRADER, item=item, requested_by=teacher)
    except ValidationFailed:  # too few teacher scores to train on (a trimmed demo data set)
        return None


@transaction.atomic
def demo_load(
    *,
    passwords: DemoPasswords,
    data_dir: Path = DEMO_DATA_DIR,
    today: date | None = None,
    request_training: bool = True,
) -> DemoResult:
    """Build (or complete) the demo school from ``data_dir``; see the module docstring.

    The answer times in the sample end on a fixed date; they are moved by whole days so that the
    last answers were given the day before ``today`` (default: today). The staff and login
    students' passwords are set to ``passwords`` on every run, so the printed logins work.
    """
    today = today or timezone.localdate()
    answers = _read_answers(data_dir)
    asap_answers = _read_asap(data_dir)
    question = json.loads((data_dir / "asap_sas_set1_question.json").read_text())
    if not answers or not asap_answers:
        raise ValidationFailed(f"the demo data under {data_dir} are empty", field="data_dir")
    created: dict[str, int] = {}

    admin, _ = _demo_user(
        username=ADMIN_USERNAME,
        password=passwords.admin,
        first_name="Site",
        last_name="Administrator",
        superuser=True,
    )
    teacher, _ = _demo_user(
        username=TEACHER_USERNAME, password=passwords.teacher, first_name="Ada", last_name="Byron"
    )
    assistant, _ = _demo_user(
        username=ASSISTANT_USERNAME,
        password=passwords.assistant,
        first_name="Alan",
        last_name="Turing",
    )
    usernames = list(dict.fromkeys(answer.student for answer in answers))
    students, created["students"] = _students(usernames)

    math_course, math_created = _course(
        slug=MATH_COURSE_SLUG,
        title="Middle-school mathematics (ASSISTments demo)",
        description=(
            "Skill-builder practice of 240 real students of the ASSISTments 2009-10 data set. "
            "The problems' texts are not public: the items stand for them in the history."
        ),
    )
    science_course, science_created = _course(
        slug=SCIENCE_COURSE_SLUG,
        title="Science: designing experiments (ASAP-SAS demo)",
        description=(
            "One short-answer question from the ASAP-SAS competition, asked in ten lab checks, "
            "with real grade-10 answers graded by their teachers."
        ),
    )
    created["courses"] = math_created + science_created
    step = max(1, len(usernames) // SCIENCE_STUDENTS)
    science_students = [students[name] for name in usernames[::step][:SCIENCE_STUDENTS]]
    created["enrollments"] = sum(
        _enrol(users=[user], course=course, role=role)
        for course in (math_course, science_course)
        for user, role in (
            (teacher, Enrollment.Role.TEACHER),
            (assistant, Enrollment.Role.ASSISTANT),
        )
    )
    created["enrollments"] += _enrol(
        users=[students[name] for name in usernames],
        course=math_course,
        role=Enrollment.Role.STUDENT,
    )
    created["enrollments"] += _enrol(
        users=science_students, course=science_course, role=Enrollment.Role.STUDENT
    )

    skill_names = list(dict.fromkeys(name for answer in answers for name in answer.skills))
    skills, created["skills"] = _skills(course=math_course, names=skill_names)
    items, created["items"] = _problem_items(course=math_course, answers=answers, skills=skills)
    last_day = max(answer.timestamp for answer in answers).date()
    created["interactions"] = _interactions(
        course=math_course,
        answers=answers,
        students=students,
        items=items,
        skills=skills,
        shift=timedelta(days=(today - last_day).days - 1),
    )
    created["resources"] = _resources(course=math_course, data_dir=data_dir)

    science_item, item_created = _science_item(course=science_course, question=question)
    created["skills"] += item_created
    created["items"] += item_created
    lab_count = -(-len(asap_answers) // len(science_students))  # rounded up
    assessments, created["assessments"] = _lab_checks(
        course=science_course, item=science_item, count=lab_count, today=today
    )
    created["graded_answers"] = _graded_answers(
        item=science_item,
        answers=asap_answers,
        students=science_students,
        assessments=assessments,
        teacher=teacher,
    )

    login_students = science_students[:STUDENTS_WITH_PASSWORD]
    for student in login_students:
        student.set_password(passwords.student)
        student.save(update_fields=["password"])

    training_run = _kt_training(course=math_course, teacher=teacher) if request_training else None
    grader_run = _grader_training(item=science_item, teacher=teacher) if request_training else None
    logins = [
        DemoLogin("admin", admin.get_username(), passwords.admin, "/admin/"),
        DemoLogin("teacher", teacher.get_username(), passwords.teacher, "/"),
        DemoLogin("assistant", assistant.get_username(), passwords.assistant, "/"),
        *(
            DemoLogin("student", student.get_username(), passwords.student, "/")
            for student in login_students
        ),
    ]
    return DemoResult(
        math_course=math_course,
        science_course=science_course,
        logins=logins,
        created=created,
        training_run=training_run,
        grader_run=grader_run,
    )
