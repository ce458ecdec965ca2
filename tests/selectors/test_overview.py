"""The class overview's reads: the heatmap sorted and paged over the whole class, who needs
attention and why (the same answer as each student's own progress), the assessment statistics,
who may read them, and a fixed number of queries whatever the class size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from edu_dl.models import (
    Assessment,
    AssessmentItem,
    Course,
    CourseMasterySummary,
    Enrollment,
    Item,
    MasteryEstimate,
    Response,
    Skill,
    Submission,
)
from edu_dl.selectors.overview import (
    AttentionSkill,
    MissedItem,
    assessment_statistics,
    class_mastery,
)
from edu_dl.selectors.progress import MatrixLabel, student_progress
from edu_dl.services.class_summary import course_mastery_summary_refresh
from edu_dl.services.errors import NotFound

pytestmark = pytest.mark.django_db

User = get_user_model()
NOW = timezone.now()


# --- Local helpers -------------------------------------------------------------------------------


def make_user(username: str, **fields):
    return User.objects.create_user(username=username, **fields)


def enroll(user, course: Course, role: str = Enrollment.Role.STUDENT) -> None:
    Enrollment.objects.create(user=user, course=course, role=role)


def estimate(student, skill: Skill, probability: float, *, evidence: int = 5, days_ago=0.1):
    """A current estimate (the older current one, if any, retired), ``days_ago`` old."""
    MasteryEstimate.objects.filter(student=student, skill=skill, is_current=True).update(
        is_current=False
    )
    MasteryEstimate.objects.create(
        student=student,
        skill=skill,
        probability=probability,
        evidence_count=evidence,
        as_of=NOW - timedelta(days=days_ago),
        is_current=True,
    )


def names(mastery) -> list[str]:
    return [row.username for row in mastery.page.object_list]


@pytest.fixture
def school():
    """Algebra: a teacher, an assistant, students alice, bob, carol (Carol Clark) and dan, skills
    Adding, Brackets, Counting. Biology: its teacher and student. A stranger and an admin.

    Estimates: alice Adding 90%, Brackets 30% (2 answers: too few to flag), Counting 70%;
    bob Adding 40% (6 answers: low), Brackets 80% now but 95% three weeks ago (a drop of 15
    points), Counting none; carol Adding 55% now, 60% three weeks ago (a 5-point fall: not a
    drop), nothing else; dan nothing.
    """
    algebra = Course.objects.create(slug="algebra", title="Algebra")
    biology = Course.objects.create(slug="biology", title="Biology")
    people = {
        "teacher": make_user("teacher"),
        "assistant": make_user("assistant"),
        "alice": make_user("alice"),
        "bob": make_user("bob"),
        "carol": make_user("carol", first_name="Carol", last_name="Clark"),
        "dan": make_user("dan"),
        "bio_teacher": make_user("bio_teacher"),
        "bio_student": make_user("bio_student"),
        "stranger": make_user("stranger"),
        "admin": make_user("admin", is_superuser=True),
    }
    enroll(people["teacher"], algebra, Enrollment.Role.TEACHER)
    enroll(people["assistant"], algebra, Enrollment.Role.ASSISTANT)
    for name in ("alice", "bob", "carol", "dan"):
        enroll(people[name], algebra)
    enroll(people["bio_teacher"], biology, Enrollment.Role.TEACHER)
    enroll(people["bio_student"], biology)
    skills = {
        name: Skill.objects.create(course=algebra, name=name)
        for name in ("Counting", "Adding", "Brackets")
    }
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    estimate(alice, skills["Adding"], 0.9)
    estimate(alice, skills["Brackets"], 0.3, evidence=2)
    estimate(alice, skills["Counting"], 0.7)
    estimate(bob, skills["Adding"], 0.4, evidence=6)
    estimate(bob, skills["Brackets"], 0.95, days_ago=21)
    estimate(bob, skills["Brackets"], 0.8, evidence=9)
    estimate(carol, skills["Adding"], 0.6, days_ago=21)
    estimate(carol, skills["Adding"], 0.55, evidence=2)
    return {"algebra": algebra, "biology": biology, **people, **skills}


# --- The heatmap ---------------------------------------------------------------------------------


def test_the_heatmap_has_every_students_mastery_of_every_skill(school):
    # When the teacher reads the class mastery (by name, ascending: the default)
    mastery = class_mastery(viewer=school["teacher"], course=school["algebra"])

    # Then the skills are the columns, by name, and each student a row with their estimates
    assert mastery.skills == [
        MatrixLabel(school["Adding"].pk, "Adding"),
        MatrixLabel(school["Brackets"].pk, "Brackets"),
        MatrixLabel(school["Counting"].pk, "Counting"),
    ]
    rows = {row.username: row for row in mastery.page.object_list}
    assert names(mastery) == ["alice", "bob", "carol", "dan"]
    assert rows["alice"].probabilities == [0.9, 0.3, 0.7]
    assert rows["bob"].probabilities == [0.4, 0.8, None]
    assert rows["carol"].probabilities == [0.55, None, None]
    assert rows["dan"].probabilities == [None, None, None]
    # overall: the mean of the skills with an estimate
    assert rows["alice"].overall == pytest.approx((0.9 + 0.3 + 0.7) / 3)
    assert rows["bob"].overall == pytest.approx((0.4 + 0.8) / 2)
    assert rows["dan"].overall is None
    assert (rows["carol"].name, rows["alice"].name) == ("Carol Clark", "alice")
    assert (mastery.student_count, mastery.estimated_cells) == (4, 6)
    assert (mastery.sort, mastery.descending) == ("name", False)


def test_rows_sort_by_name_on_the_display_name(school):
    # carol is "Carol Clark", who sorts after "bob" and before "dan" either way round
    ascending = class_mastery(viewer=school["teacher"], course=school["algebra"])
    descending = class_mastery(viewer=school["teacher"], course=school["algebra"], descending=True)
    assert names(ascending) == ["alice", "bob", "carol", "dan"]
    assert names(descending) == ["dan", "carol", "bob", "alice"]


def test_rows_sort_by_overall_mastery_with_the_unestimated_last(school):
    # overall: alice 63%, bob 60%, carol 55%, dan none
    ascending = class_mastery(viewer=school["teacher"], course=school["algebra"], sort="overall")
    descending = class_mastery(
        viewer=school["teacher"], course=school["algebra"], sort="overall", descending=True
    )
    assert names(ascending) == ["carol", "bob", "alice", "dan"]
    assert names(descending) == ["alice", "bob", "carol", "dan"]
    assert (descending.sort, descending.descending) == ("overall", True)


def test_rows_sort_by_one_skill_with_the_unestimated_last_by_name(school):
    sort = f"skill-{school['Brackets'].pk}"
    ascending = class_mastery(viewer=school["teacher"], course=school["algebra"], sort=sort)
    descending = class_mastery(
        viewer=school["teacher"], course=school["algebra"], sort=sort, descending=True
    )
    # Brackets: alice 30%, bob 80%; carol and dan have none
    assert names(ascending) == ["alice", "bob", "carol", "dan"]
    assert names(descending) == ["bob", "alice", "carol", "dan"]
    assert ascending.sort == sort


@pytest.mark.parametrize("sort", ["nonsense", "skill-", "skill-x", "skill-999999", "biology"])
def test_an_unknown_sort_sorts_by_name(school, sort):
    mastery = class_mastery(viewer=school["teacher"], course=school["algebra"], sort=sort)
    assert mastery.sort == "name"
    assert names(mastery) == ["alice", "bob", "carol", "dan"]


def test_a_skill_of_another_course_sorts_by_name(school):
    other = Skill.objects.create(course=school["biology"], name="Cells")
    mastery = class_mastery(
        viewer=school["teacher"], course=school["algebra"], sort=f"skill-{other.pk}"
    )
    assert mastery.sort == "name"


def test_the_heatmap_is_paged_after_sorting_the_whole_class(school):
    # When the teacher asks for the second page of two students, by overall mastery ascending
    mastery = class_mastery(
        viewer=school["teacher"], course=school["algebra"], sort="overall", page=2, per_page=2
    )
    # Then it holds the third and fourth of the whole class's order, with their cells
    assert names(mastery) == ["alice", "dan"]
    assert mastery.page.paginator.num_pages == 2
    assert [row.probabilities for row in mastery.page.object_list] == [
        [0.9, 0.3, 0.7],
        [None, None, None],
    ]
    # and a page out of range is the last one
    assert (
        class_mastery(
            viewer=school["teacher"], course=school["algebra"], page="9", per_page=3
        ).page.number
        == 2
    )


def test_a_student_who_left_is_not_in_the_heatmap(school):
    Enrollment.objects.filter(user=school["bob"]).delete()
    mastery = class_mastery(viewer=school["teacher"], course=school["algebra"])
    assert names(mastery) == ["alice", "carol", "dan"]
    assert mastery.estimated_cells == 4
    assert "bob" not in [student.username for student in mastery.needing_attention]


# --- Who needs attention -------------------------------------------------------------------------


def test_students_needing_attention_are_low_after_enough_answers_or_dropped(school):
    mastery = class_mastery(viewer=school["teacher"], course=school["algebra"], now=NOW)

    # bob: Adding 40% after 6 answers (low), Brackets down 15 points (a drop). alice's 30%
    # Brackets has 2 answers only; carol fell 5 points, less than the 10 the rule asks.
    assert [student.username for student in mastery.needing_attention] == ["bob"]
    bob = mastery.needing_attention[0]
    assert (bob.flagged_count, bob.lowest) == (2, 0.4)
    assert bob.skills == [
        AttentionSkill(
            skill_id=school["Adding"].pk,
            skill_name="Adding",
            probability=0.4,
            evidence_count=6,
            is_low=True,
            drop=None,
        ),
        AttentionSkill(
            skill_id=school["Brackets"].pk,
            skill_name="Brackets",
            probability=0.8,
            evidence_count=9,
            is_low=False,
            drop=pytest.approx(-0.15),
        ),
    ]
    assert (mastery.rule.below, mastery.rule.min_evidence, mastery.rule.drop) == (0.6, 3, 0.1)


def test_the_class_list_agrees_with_each_students_progress(school):
    # Given a low skill that also dropped, for carol
    estimate(school["carol"], school["Brackets"], 0.9, days_ago=20)
    estimate(school["carol"], school["Brackets"], 0.2, evidence=4)
    mastery = class_mastery(viewer=school["teacher"], course=school["algebra"], now=NOW)
    # Then every student's flagged skills are those of their own progress page
    flagged = {
        student.username: sorted(skill.skill_name for skill in student.skills)
        for student in mastery.needing_attention
    }
    for name in ("alice", "bob", "carol", "dan"):
        progress = student_progress(
            viewer=school["teacher"], student=school[name], course=school["algebra"], now=NOW
        )
        assert flagged.get(name, []) == sorted(
            skill.skill_name for skill in progress.needing_attention
        ), name
    carol = next(s for s in mastery.needing_attention if s.username == "carol")
    assert [(s.skill_name, s.is_low, s.drop) for s in carol.skills] == [
        ("Brackets", True, pytest.approx(-0.7))
    ]


def test_the_most_flagged_students_come_first_then_the_lowest(school):
    estimate(school["dan"], school["Adding"], 0.5, evidence=3)
    estimate(school["carol"], school["Adding"], 0.1, evidence=3)
    mastery = class_mastery(viewer=school["teacher"], course=school["algebra"], now=NOW)
    # bob has two flagged skills; carol (10%) and dan (50%) one each
    assert [s.username for s in mastery.needing_attention] == ["bob", "carol", "dan"]


def test_only_the_first_students_needing_attention_are_described(school):
    estimate(school["dan"], school["Adding"], 0.5, evidence=3)
    mastery = class_mastery(
        viewer=school["teacher"], course=school["algebra"], attention_described=1, now=NOW
    )
    assert [(s.username, s.flagged_count, len(s.skills)) for s in mastery.needing_attention] == [
        ("bob", 2, 2),
        ("dan", 1, 0),
    ]


def test_students_the_summary_does_not_describe_are_described_from_the_estimates(
    school, monkeypatch
):
    # Given a summary that describes one student only (bob), then bob leaves the course
    estimate(school["dan"], school["Adding"], 0.5, evidence=3)
    monkeypatch.setattr("edu_dl.services.class_summary.DESCRIBED", 1)
    course_mastery_summary_refresh(course=school["algebra"], now=NOW)
    Enrollment.objects.filter(user=school["bob"]).delete()
    # When the teacher reads the class
    mastery = class_mastery(viewer=school["teacher"], course=school["algebra"], now=NOW)
    # Then dan is described all the same, read from his estimates
    assert mastery.summary_as_of is not None
    assert [(s.username, [k.skill_name for k in s.skills]) for s in mastery.needing_attention] == [
        ("dan", ["Adding"])
    ]


def test_a_drop_is_measured_from_the_newest_estimate_before_the_window(school):
    # Given carol's Adding: 90% 30 days ago, 60% 21 days ago, 55% now: the baseline is 60%
    MasteryEstimate.objects.create(
        student=school["carol"],
        skill=school["Adding"],
        probability=0.9,
        as_of=NOW - timedelta(days=30),
        is_current=False,
    )
    mastery = class_mastery(viewer=school["teacher"], course=school["algebra"], now=NOW)
    assert [s.username for s in mastery.needing_attention] == ["bob"]
    # but over a window of 25 days the baseline is 90%: a drop of 35 points
    wider = class_mastery(
        viewer=school["teacher"], course=school["algebra"], window_days=25, now=NOW
    )
    carol = next(s for s in wider.needing_attention if s.username == "carol")
    assert [(s.skill_name, s.drop) for s in carol.skills] == [("Adding", pytest.approx(-0.35))]


def test_the_attention_thresholds_come_from_the_settings(school, settings):
    settings.EDU_DL = {
        **settings.EDU_DL,
        "MASTERY_ATTENTION_BELOW": 0.35,
        "MASTERY_ATTENTION_MIN_EVIDENCE": 1,
        "MASTERY_ATTENTION_DROP": 0.5,
    }
    mastery = class_mastery(viewer=school["teacher"], course=school["algebra"], now=NOW)
    assert [(s.username, [k.skill_name for k in s.skills]) for s in mastery.needing_attention] == [
        ("alice", ["Brackets"])
    ]


# --- Who may read it -----------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["teacher", "assistant", "admin"])
def test_course_staff_may_read_the_class(school, person):
    mastery = class_mastery(viewer=school[person], course=school["algebra"])
    assert mastery.student_count == 4


@pytest.mark.parametrize("person", ["alice", "bio_teacher", "bio_student", "stranger", None])
def test_no_one_else_may_read_the_class(school, person):
    viewer = AnonymousUser() if person is None else school[person]
    with pytest.raises(NotFound, match=r"No such course\."):
        class_mastery(viewer=viewer, course=school["algebra"])
    with pytest.raises(NotFound, match=r"No such course\."):
        assessment_statistics(viewer=viewer, course=school["algebra"])


# --- Assessment statistics -----------------------------------------------------------------------


def add_quiz(course: Course, title: str, items: list[tuple[str, float]], **fields) -> Assessment:
    quiz = Assessment.objects.create(course=course, title=title, **fields)
    for position, (item_title, max_score) in enumerate(items):
        item = Item.objects.create(
            course=course, kind=Item.Kind.NUMERIC, title=item_title, max_score=max_score
        )
        AssessmentItem.objects.create(assessment=quiz, item=item, position=position)
    return quiz


def hand_in(
    student, quiz: Assessment, scores: list[float | None], *, minutes_ago: int = 0, status=None
):
    """A submission of ``quiz`` with these scores, item by item (None: not graded yet)."""
    submission = Submission.objects.create(
        student=student,
        assessment=quiz,
        status=status
        or (Submission.Status.GRADED if None not in scores else Submission.Status.NEEDS_REVIEW),
        submitted_at=NOW - timedelta(minutes=minutes_ago),
    )
    for entry, score in zip(quiz.entries.order_by("position"), scores, strict=True):
        Response.objects.create(
            submission=submission,
            item=entry.item,
            score=score,
            status=Response.Status.GRADED if score is not None else Response.Status.NEEDS_REVIEW,
        )
    return submission


def test_assessment_statistics_per_published_assessment(school):
    # Given a quiz of "Sum" (2 marks) and "Product" (1 mark)
    algebra = school["algebra"]
    quiz = add_quiz(algebra, "Quiz one", [("Sum", 2), ("Product", 1)], due_at=NOW)
    # alice tried twice: her latest graded attempt (3 of 3) counts, not the first (0 of 3)
    hand_in(school["alice"], quiz, [0, 0], minutes_ago=30)
    hand_in(school["alice"], quiz, [2, 1], minutes_ago=10)
    hand_in(school["bob"], quiz, [1, 0])  # 1 of 3
    hand_in(school["carol"], quiz, [2, 0])  # 2 of 3
    hand_in(school["dan"], quiz, [None, 1])  # waits for review: handed in, not graded
    # and a draft, an unpublished quiz and another course's quiz, which do not count
    hand_in(school["dan"], quiz, [0, 0], status=Submission.Status.DRAFT)
    hidden = add_quiz(algebra, "Hidden", [("Secret", 1)], is_published=False)
    hand_in(school["alice"], hidden, [0])
    add_quiz(school["biology"], "Cells quiz", [("Cell", 1)])
    empty = add_quiz(algebra, "Quiz two", [("Later", 1)])

    statistics = assessment_statistics(viewer=school["teacher"], course=algebra)

    # Then each published quiz of the course, by due date (none last)
    assert [s.title for s in statistics] == ["Quiz one", "Quiz two"]
    first = statistics[0]
    assert (first.assessment_id, first.due_at) == (quiz.pk, NOW)
    assert (first.handed_in, first.students_handed_in, first.graded) == (5, 4, 3)
    assert first.mean == pytest.approx((1 + 1 / 3 + 2 / 3) / 3)
    assert first.median == pytest.approx(2 / 3)
    # 33% falls in 30-39%, 67% in 60-69%, 100% in the last band
    assert first.distribution == [0, 0, 0, 1, 0, 0, 1, 0, 0, 1]
    # Product: mean 1/3 of a mark, 2 of 3 below full marks; Sum: mean 5/3 of 2 marks, 1 below
    assert first.most_missed == [
        MissedItem(
            item_id=quiz.entries.get(position=1).item_id,
            name="Product",
            mean_share=pytest.approx(1 / 3),
            answered=3,
            below_full_marks=2,
        ),
        MissedItem(
            item_id=quiz.entries.get(position=0).item_id,
            name="Sum",
            mean_share=pytest.approx(5 / 6),
            answered=3,
            below_full_marks=1,
        ),
    ]
    second = statistics[1]
    assert (second.assessment_id, second.handed_in, second.graded) == (empty.pk, 0, 0)
    assert (second.mean, second.median, second.most_missed) == (None, None, [])
    assert second.distribution == [0] * 10


def test_items_everyone_aced_are_not_named_as_missed(school):
    quiz = add_quiz(school["algebra"], "Easy", [("One", 1), ("Two", 1)])
    hand_in(school["alice"], quiz, [1, 1])
    hand_in(school["bob"], quiz, [1, 0])
    (statistics,) = assessment_statistics(viewer=school["teacher"], course=school["algebra"])
    assert [item.name for item in statistics.most_missed] == ["Two"]


# --- Queries -------------------------------------------------------------------------------------


def grow_class(course: Course, students: int, skills: int) -> None:
    made_skills = [Skill.objects.create(course=course, name=f"Extra {n}") for n in range(skills)]
    for number in range(students):
        student = make_user(f"extra{number}")
        enroll(student, course)
        for skill in made_skills:
            estimate(student, skill, 0.95, days_ago=20)
            estimate(student, skill, 0.3, evidence=5)


@pytest.mark.parametrize("summary", ["stored by the worker", "computed by the read"])
def test_the_reads_take_the_same_queries_whatever_the_class_size(school, summary):
    teacher, algebra = school["teacher"], school["algebra"]
    quiz = add_quiz(algebra, "Quiz", [("Sum", 1)])
    hand_in(school["alice"], quiz, [1])
    class_mastery(viewer=teacher, course=algebra)  # the teacher's role, cached on the user

    def prepare() -> None:
        if summary == "stored by the worker":
            course_mastery_summary_refresh(course=algebra, now=NOW)
        else:
            CourseMasterySummary.objects.filter(course=algebra).delete()

    prepare()
    with CaptureQueriesContext(connection) as small:
        class_mastery(viewer=teacher, course=algebra, sort="overall", now=NOW)
        assessment_statistics(viewer=teacher, course=algebra)
    grow_class(algebra, students=12, skills=4)
    for number in range(12):
        hand_in(User.objects.get(username=f"extra{number}"), quiz, [0])
    prepare()
    with CaptureQueriesContext(connection) as big:
        mastery = class_mastery(viewer=teacher, course=algebra, sort="overall", now=NOW)
        statistics = assessment_statistics(viewer=teacher, course=algebra)
    assert mastery.student_count == 16
    assert len(mastery.needing_attention) == 13
    assert statistics[0].graded == 13
    assert len(big.captured_queries) == len(small.captured_queries)
    assert (mastery.summary_as_of is None) is (summary == "computed by the read")
