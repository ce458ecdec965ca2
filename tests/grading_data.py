"""Tiny made-up short answers for the grading tests, and helpers that put them through the
services: students submit them, teachers score them, graders are stored and activated."""

from __future__ import annotations

from dataclasses import dataclass

from edu_dl.models import Assessment, Course, Item, ModelVersion, Response
from edu_dl.services.model_versions import model_version_activate, model_version_create
from edu_dl.services.review import response_override
from edu_dl.services.scopes import scope_resolve
from edu_dl.services.submissions import submission_create
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ItemFactory,
    SkillFactory,
    UserFactory,
)

PHOTOSYNTHESIS_QUESTION = "What happens in photosynthesis?"
PHOTOSYNTHESIS_REFERENCE = (
    "Plants use light energy to make glucose from carbon dioxide and water, releasing oxygen."
)
PHOTOSYNTHESIS_RIGHT = [
    "Plants use sunlight to turn water and carbon dioxide into glucose and oxygen.",
    "Photosynthesis uses light energy, water and carbon dioxide to make sugar and release oxygen.",
    "Chlorophyll captures sunlight so the plant makes glucose from carbon dioxide and water.",
    "The plant turns carbon dioxide and water into sugar using light, giving off oxygen.",
    "Light energy is captured by chlorophyll to make glucose from water and carbon dioxide.",
    "Using sunlight, leaves combine carbon dioxide and water into glucose and oxygen.",
    "Sunlight powers the making of sugar from carbon dioxide and water in the chloroplasts.",
    "Plants make their food, glucose, from carbon dioxide and water with energy from light.",
    "In chloroplasts light energy converts carbon dioxide and water to glucose and oxygen.",
    "Green plants use light to build sugar out of carbon dioxide and water and release oxygen.",
    "Photosynthesis: light plus water plus carbon dioxide gives glucose and oxygen.",
    "The leaf absorbs sunlight and uses it to make glucose from carbon dioxide and water.",
    "Light is used by plants to change carbon dioxide and water into sugar and oxygen.",
    "Chloroplasts use the energy of sunlight to produce glucose from water and carbon dioxide.",
    "Plants capture light energy and store it as glucose made from carbon dioxide and water.",
]
PHOTOSYNTHESIS_WRONG = [
    "Plants eat soil to grow bigger.",
    "The roots suck food out of the dirt.",
    "Plants get their food from fertiliser in the ground.",
    "It is when plants drink water at night.",
    "Plants breathe in oxygen and sleep.",
    "Animals give plants their food.",
    "The flowers make honey for bees.",
    "Plants grow because of the rain only.",
    "It is how plants make soil.",
    "Leaves fall off in autumn.",
    "Plants take minerals from rocks to eat.",
    "The stem carries dirt up to the leaves.",
    "Plants get energy by eating bugs.",
    "Seeds turn into trees by magic.",
    "Plants feed on the moonlight at night.",
]
# Teachers do not always agree with the pattern: three answers scored against it keep the
# grader's validated QWK below 1 (0.8 on these answers) and its confidence below 1.
DISPUTED = (3, 8, 20)

EVAPORATION_QUESTION = "What is evaporation?"
EVAPORATION_REFERENCE = (
    "Evaporation is when liquid water is heated by the sun and turns into water vapour."
)
EVAPORATION_RIGHT = [
    "The sun heats water and it turns into vapour in the air.",
    "Heat from the sun makes liquid water become water vapour.",
    "Water warms up and changes into a gas called water vapour.",
    "Evaporation is liquid water turning to vapour when heated.",
    "When the sun heats puddles the water becomes vapour.",
    "Liquid water gains heat and escapes as vapour.",
    "The sun's heat changes water from liquid into vapour.",
    "Heated water turns into an invisible gas, water vapour.",
    "Water evaporates when heat turns the liquid into vapour.",
    "Sunlight heats the sea and water goes up as vapour.",
]
EVAPORATION_WRONG = [
    "Water freezes into ice in winter.",
    "Clouds are made of cotton.",
    "Rain falls from the sky.",
    "Fish live in water.",
    "Water is wet.",
    "Ice melts when you hold it.",
    "The river flows to the sea.",
    "Snow is cold and white.",
    "Water comes from the tap.",
    "Puddles are for jumping in.",
]


def photosynthesis_answers() -> tuple[list[str], list[float]]:
    """30 answers on a 0-1 scale as a teacher scored them, three against the pattern."""
    texts = PHOTOSYNTHESIS_RIGHT + PHOTOSYNTHESIS_WRONG
    scores = [1.0] * len(PHOTOSYNTHESIS_RIGHT) + [0.0] * len(PHOTOSYNTHESIS_WRONG)
    for index in DISPUTED:
        scores[index] = 1.0 - scores[index]
    return texts, scores


def evaporation_answers() -> tuple[list[str], list[float]]:
    texts = EVAPORATION_RIGHT + EVAPORATION_WRONG
    return texts, [1.0] * len(EVAPORATION_RIGHT) + [0.0] * len(EVAPORATION_WRONG)


@dataclass
class Quiz:
    course: Course
    teacher: object
    assessment: Assessment
    items: list[Item]


def make_quiz(*, items: list[dict], slug: str = "biology") -> Quiz:
    """A course with a teacher and an open assessment of short-answer items (each dict holds
    ItemFactory arguments), every item teaching one skill."""
    course = CourseFactory(slug=slug)
    skill = SkillFactory(course=course, name="Plants")
    teacher = EnrollmentFactory(
        course=course, user=UserFactory(username=f"{slug}-teacher"), role="teacher"
    ).user
    made = [ItemFactory(course=course, skills=[skill], **spec) for spec in items]
    assessment = AssessmentFactory(course=course, title="Quiz", items=made)
    return Quiz(course=course, teacher=teacher, assessment=assessment, items=made)


def new_student(course: Course, number: int):
    return EnrollmentFactory(
        course=course, user=UserFactory(username=f"{course.slug}-student-{number}")
    ).user


def submit(quiz: Quiz, student, answers: dict[Item, str]) -> list[Response]:
    """The student's submission of ``answers``; returns its responses in item order."""
    submission = submission_create(
        student=student,
        assessment=quiz.assessment,
        answers={item.pk: text for item, text in answers.items()},
    )
    return list(submission.responses.order_by("item_id"))


def teacher_scored(
    quiz: Quiz, item: Item, texts: list[str], scores: list[float], *, first_student: int = 0
) -> list[Response]:
    """One student per answer submits it, and the teacher scores it (an override of the
    pending response, as the review pages allow)."""
    scored = []
    for offset, (text, score) in enumerate(zip(texts, scores, strict=True)):
        student = new_student(quiz.course, first_student + offset)
        (response,) = [r for r in submit(quiz, student, {item: text}) if r.item_id == item.pk]
        scored.append(response_override(response=response, actor=quiz.teacher, score=score))
    return scored


def activate_grader(grader, *, item: Item | None = None) -> ModelVersion:
    """Store a trained grader as the active version of its scope: the item's grader, or the
    cold-start reference grader when ``item`` is None."""
    version = model_version_create(
        scope=scope_resolve(kind="grader", item=item),
        architecture=grader.scorer.registered_name,
        config={},
        metrics=grader.metrics,
        artifact=grader.to_bytes(),
        data_fingerprint="made-up answers",
    )
    return model_version_activate(version=version)
