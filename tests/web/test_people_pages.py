"""The teacher's student pages: the class list and one student's record."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from edu_dl.models import (
    Assessment,
    AssessmentItem,
    Course,
    Enrollment,
    Item,
    MasteryEstimate,
    Recommendation,
    Resource,
    Response,
    Skill,
    Submission,
)
from edu_dl.services.class_summary import course_mastery_summary_refresh
from tests.factories import ModelVersionFactory
from tests.web.accounts import enroll, make_user

pytestmark = pytest.mark.django_db

User = get_user_model()


# --- Local helpers -------------------------------------------------------------------------------


def list_url(course: Course) -> str:
    return reverse("edu_dl:student_list", kwargs={"slug": course.slug})


def student_url(course: Course, student) -> str:
    return reverse("edu_dl:student_detail", kwargs={"slug": course.slug, "student_id": student.pk})


def estimate_history(student, skill: Skill, values: list[tuple[int, float, int]]) -> None:
    """Estimates of ``skill`` for ``student``, ``(days ago, probability, evidence)`` oldest
    first; the last is the current one."""
    now = timezone.now()
    for index, (days_ago, probability, evidence) in enumerate(values):
        MasteryEstimate.objects.create(
            student=student,
            skill=skill,
            probability=probability,
            evidence_count=evidence,
            as_of=now - timedelta(days=days_ago),
            is_current=index == len(values) - 1,
        )


def add_students(course: Course, count: int, skills: list[Skill], *, start: int = 0) -> None:
    """``count`` more students, each with two estimates of every skill."""
    for number in range(start, start + count):
        student = User.objects.create(username=f"student{number:03d}")
        enroll(student, course)
        for skill in skills:
            estimate_history(student, skill, [(20, 0.5, 2), (1, 0.55, 4)])


@pytest.fixture
def school():
    """Algebra with two skills, a teacher, an assistant and two students with mastery, work
    and suggestions; biology beside it."""
    algebra = Course.objects.create(slug="algebra", title="Algebra")
    biology = Course.objects.create(slug="biology", title="Biology")
    people = {
        "teacher": make_user("teacher"),
        "assistant": make_user("assistant"),
        "alice": make_user("alice", first_name="Alice", last_name="Able"),
        "bob": make_user("bob", first_name="Bob", last_name="Baker"),
        "bio_teacher": make_user("bio_teacher"),
        "bio_student": make_user("bio_student"),
        "stranger": make_user("stranger"),
        "admin": make_user("admin", is_superuser=True, is_staff=True),
    }
    enroll(people["teacher"], algebra, Enrollment.Role.TEACHER)
    enroll(people["assistant"], algebra, Enrollment.Role.ASSISTANT)
    enroll(people["alice"], algebra)
    enroll(people["bob"], algebra)
    enroll(people["bio_teacher"], biology, Enrollment.Role.TEACHER)
    enroll(people["bio_student"], biology)
    adding = Skill.objects.create(course=algebra, name="Adding")
    counting = Skill.objects.create(course=algebra, name="Counting")
    Skill.objects.create(course=algebra, name="Dividing")  # no estimates for anyone
    # alice: adding fell from 80% to 40% (needs attention twice over), counting steady at 90%
    estimate_history(people["alice"], adding, [(30, 0.8, 2), (20, 0.7, 4), (2, 0.4, 6)])
    estimate_history(people["alice"], counting, [(20, 0.9, 5), (1, 0.9, 7)])
    # bob: nothing estimated yet
    sum_item = Item.objects.create(course=algebra, kind=Item.Kind.NUMERIC, title="Two plus two")
    sum_item.skills.add(adding)
    essay = Item.objects.create(course=algebra, kind=Item.Kind.ESSAY, title="Why add")
    quiz = Assessment.objects.create(course=algebra, title="Quiz one")
    AssessmentItem.objects.create(assessment=quiz, item=sum_item, position=1)
    AssessmentItem.objects.create(assessment=quiz, item=essay, position=2)
    submission = Submission.objects.create(
        student=people["alice"],
        assessment=quiz,
        status=Submission.Status.NEEDS_REVIEW,
        submitted_at=timezone.now(),
    )
    version = ModelVersionFactory(course=algebra, kind="grader", version=2, architecture="ridge")
    Response.objects.create(
        submission=submission,
        item=sum_item,
        answer=4,
        status=Response.Status.GRADED,
        score=1,
        grade_source="rule",
        released=True,
    )
    waiting = Response.objects.create(
        submission=submission,
        item=essay,
        answer="Because.",
        status=Response.Status.NEEDS_REVIEW,
        score=0.25,
        grade_source="model",
        confidence=0.41,
        model_version=version,
    )
    video = Resource.objects.create(course=algebra, title="Adding video", kind=Resource.Kind.VIDEO)
    now = timezone.now()
    # An earlier set of one suggestion, then the current set of two
    Recommendation.objects.create(
        student=people["alice"],
        course=algebra,
        item=sum_item,
        skill=adding,
        rank=1,
        score=0.5,
        reason="old",
        facts={"pinned": True},
        is_current=False,
        viewed_at=now - timedelta(days=3),
        completed_at=now - timedelta(days=3),
    )
    Recommendation.objects.create(
        student=people["alice"],
        course=algebra,
        resource=video,
        skill=adding,
        rank=1,
        score=0.9,
        reason="stored",
        facts={"pinned": True},
        feedback=Recommendation.Feedback.HELPFUL,
        feedback_at=now,
        viewed_at=now,
    )
    Recommendation.objects.create(
        student=people["alice"],
        course=algebra,
        item=essay,
        skill=adding,
        rank=2,
        score=0.8,
        reason="stored",
        facts={"pinned": True},
    )
    return {
        "algebra": algebra,
        "biology": biology,
        "adding": adding,
        "counting": counting,
        "quiz": quiz,
        "submission": submission,
        "waiting": waiting,
        **people,
    }


# --- The class list ------------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["teacher", "assistant", "admin"])
def test_staff_see_each_students_mastery_and_skills_needing_attention(client, school, person):
    # Given alice with two of three skills estimated (one needing attention) and bob with none
    algebra = school["algebra"]
    client.force_login(school[person])
    # When a member of staff opens the student list
    response = client.get(list_url(algebra))
    # Then each student has a line: overall mastery, skills estimated, skills needing attention
    assert response.status_code == 200
    assert [
        (s.student.username, s.overall_mastery, s.skills_estimated, s.skills_needing_attention)
        for s in response.context["summaries"]
    ] == [("alice", pytest.approx(0.65), 2, 1), ("bob", None, 0, 0)]
    content = response.content.decode()
    assert (
        f'<th scope="row"><a href="{student_url(algebra, school["alice"])}">Alice Able</a></th>'
        in (content)
    )
    assert (
        f'<th scope="row"><a href="{student_url(algebra, school["bob"])}">Bob Baker</a></th>'
        in (content)
    )
    assert '<span class="mastery-value">65%</span>' in content
    assert "<td>2 of 3</td>" in content
    assert '<strong class="attention">1 skill</strong>' in content
    assert "No estimate yet" in content
    assert 'aria-current="page">Students</a>' in content


def test_the_student_list_has_fifty_students_a_page(client, school):
    # Given 55 students in all
    add_students(school["algebra"], 53, [])
    client.force_login(school["teacher"])
    # When the teacher opens the first and the second page
    first = client.get(list_url(school["algebra"]))
    second = client.get(list_url(school["algebra"]), {"page": 2})
    # Then the first has 50 lines and the second the last 5
    assert len(first.context["summaries"]) == 50
    assert first.context["students_page"].paginator.num_pages == 2
    assert [s.student.username for s in second.context["summaries"]] == [
        "student048",
        "student049",
        "student050",
        "student051",
        "student052",
    ]
    assert "Page 2 of 2" in second.content.decode()


def test_the_student_list_query_count_does_not_grow_with_the_class(client, school):
    # Given the list with 3 students, each with estimates
    algebra = school["algebra"]
    skills = [school["adding"], school["counting"]]
    add_students(algebra, 1, skills)
    client.force_login(school["teacher"])
    course_mastery_summary_refresh(course=algebra)  # as the worker does after mastery changes
    with CaptureQueriesContext(connection) as small_class:
        small = client.get(list_url(algebra))
    # When the class grows to 40 students
    add_students(algebra, 37, skills, start=1)
    course_mastery_summary_refresh(course=algebra)
    with CaptureQueriesContext(connection) as big_class:
        big = client.get(list_url(algebra))
    # Then the page lists them all with the same number of queries
    assert len(small.context["summaries"]) == 3
    assert len(big.context["summaries"]) == 40
    assert len(big_class.captured_queries) == len(small_class.captured_queries)


# --- One student ---------------------------------------------------------------------------------


def test_the_student_page_shows_mastery_per_skill_with_trend_and_charts(client, school):
    algebra = school["algebra"]
    client.force_login(school["teacher"])
    # When the teacher opens alice's page
    response = client.get(student_url(algebra, school["alice"]))
    # Then every skill has its current mastery, evidence, trend and attention
    assert response.status_code == 200
    rows = response.context["skill_rows"]
    assert [
        (row.progress.skill_name, row.progress.probability, row.progress.evidence_count, row.trend)
        for row in rows
    ] == [
        ("Adding", 0.4, 6, "▼ down 30 points"),
        ("Counting", 0.9, 7, "no change"),
        ("Dividing", None, 0, ""),
    ]
    assert [row.progress.needs_attention for row in rows] == [True, False, False]
    # and a chart per estimated skill, drawn from every estimate, in name order
    charts = [row.chart for row in response.context["charted_rows"]]
    assert [chart.title for chart in charts] == [
        "Mastery of Adding over time",
        "Mastery of Counting over time",
    ]
    assert [len(chart.series[0].points) for chart in charts] == [3, 2]
    content = response.content.decode()
    assert "<h2>Alice Able</h2>" in content
    assert '<tr id="skill-' in content
    assert "is-focused" not in content
    assert "Mastery of Adding over time" in content


def test_a_skill_in_the_query_is_highlighted_and_drawn_first(client, school):
    algebra, counting = school["algebra"], school["counting"]
    client.force_login(school["teacher"])
    # When the teacher comes from the heatmap's cell of alice and counting
    response = client.get(student_url(algebra, school["alice"]), {"skill": counting.pk})
    # Then counting's row is marked and its chart comes first
    assert [row.focused for row in response.context["skill_rows"]] == [False, True, False]
    assert [row.progress.skill_name for row in response.context["charted_rows"]] == [
        "Counting",
        "Adding",
    ]
    content = response.content.decode()
    assert (
        f'<tr id="skill-{counting.pk}" class="is-focused" aria-current="true">\n'
        '        <th scope="row"><span class="focus-marker">Selected:</span> Counting</th>'
    ) in content
    assert "Selected skill: Counting (marked in the table, its chart drawn first)." in content


@pytest.mark.parametrize("value", ["abc", "999999", ""])
def test_an_unknown_skill_in_the_query_highlights_nothing(client, school, value):
    client.force_login(school["teacher"])
    response = client.get(student_url(school["algebra"], school["alice"]), {"skill": value})
    assert response.status_code == 200
    assert [row.focused for row in response.context["skill_rows"]] == [False, False, False]
    assert response.context["focused_skill"] is None


def test_the_student_page_lists_submissions_with_scores_and_links_waiting_ones(client, school):
    algebra = school["algebra"]
    client.force_login(school["teacher"])
    response = client.get(student_url(algebra, school["alice"]))
    # Then the submission and both answers are there with score, source and status
    submissions = list(response.context["submissions"])
    assert [s.pk for s in submissions] == [school["submission"].pk]
    assert [
        (r.item.title, r.score, r.grade_source, r.status) for r in submissions[0].responses.all()
    ] == [("Two plus two", 1.0, "rule", "graded"), ("Why add", 0.25, "model", "needs_review")]
    content = response.content.decode()
    review_url = reverse(
        "edu_dl:review_detail", kwargs={"slug": "algebra", "response_id": school["waiting"].pk}
    )
    submission_url = reverse(
        "edu_dl:submission_detail",
        kwargs={"slug": "algebra", "submission_id": school["submission"].pk},
    )
    assert f'<a href="{submission_url}">Quiz one</a>' in content
    assert "<td>1 of 1</td>" in content
    assert "<td>0.25 of 1</td>" in content
    assert "<td>Rule</td>" in content
    assert 'Model <span class="detail">v2 · confidence 41%</span>' in content
    assert (
        f'<td>Needs review · <a href="{review_url}">Review<span class="visually-hidden"> '
        "Why add</span></a></td>"
    ) in content


def test_the_student_page_lists_current_and_earlier_suggestions_with_what_was_done(client, school):
    client.force_login(school["teacher"])
    response = client.get(student_url(school["algebra"], school["alice"]))
    # Then the current set comes first, then the earlier one, each in rank order
    sets = response.context["suggestion_sets"]
    assert [
        (each.is_current, [(row.recommendation.rank, str(row.recommendation)) for row in rows])
        for each, rows in sets
    ] == [
        (True, [(1, "#1 for alice: Adding video"), (2, "#2 for alice: Why add")]),
        (False, [(1, "#1 for alice: Two plus two")]),
    ]
    # with the reason in the reader's language and what the student did
    assert [row.reason for _, rows in sets for row in rows] == ["Your teacher recommends this."] * 3
    content = response.content.decode()
    assert "Current suggestions (made " in content
    assert "Earlier suggestions (made " in content
    assert "<td>Helpful</td>" in content
    assert 'Adding video <span class="detail">(study: Video)</span>' in content


def test_the_student_page_query_count_does_not_grow_with_the_record(client, school):
    # Given alice's page as the fixture made it
    algebra, alice = school["algebra"], school["alice"]
    client.force_login(school["teacher"])
    with CaptureQueriesContext(connection) as small_record:
        client.get(student_url(algebra, alice))
    # When she has many more estimates, submissions, answers and suggestions
    skills = [Skill.objects.create(course=algebra, name=f"Skill {n}") for n in range(5)]
    for skill in skills:
        estimate_history(alice, skill, [(days, 0.5, days) for days in range(20, 0, -1)])
    for number in range(5):
        quiz = Assessment.objects.create(course=algebra, title=f"Quiz {number}")
        submission = Submission.objects.create(
            student=alice, assessment=quiz, status="graded", submitted_at=timezone.now()
        )
        for position in range(3):
            item = Item.objects.create(course=algebra, kind=Item.Kind.NUMERIC, title=f"Q{position}")
            AssessmentItem.objects.create(assessment=quiz, item=item, position=position)
            Response.objects.create(
                submission=submission, item=item, score=1, grade_source="rule", status="graded"
            )
            Recommendation.objects.create(
                student=alice, course=algebra, item=item, rank=position + 1, score=1, reason="r"
            )
    with CaptureQueriesContext(connection) as big_record:
        response = client.get(student_url(algebra, alice))
    # Then the page costs the same number of queries
    assert len(list(response.context["submissions"])) == 6
    assert len(response.context["charted_rows"]) == 7
    assert len(big_record.captured_queries) == len(small_record.captured_queries)


# --- Who may see ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("person", "status"),
    [("alice", 403), ("bio_teacher", 404), ("bio_student", 404), ("stranger", 404)],
)
def test_only_staff_may_open_the_student_pages(client, school, person, status):
    client.force_login(school[person])
    assert client.get(list_url(school["algebra"])).status_code == status
    assert client.get(student_url(school["algebra"], school["bob"])).status_code == status


def test_anonymous_visitors_are_sent_to_login(client, school):
    for url in [list_url(school["algebra"]), student_url(school["algebra"], school["alice"])]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("person", ["teacher", "bio_student", "stranger"])
def test_someone_who_is_not_a_student_of_the_course_has_no_page(client, school, person):
    # Given the teacher of algebra
    client.force_login(school["teacher"])
    # When they ask for the page of a teacher, another course's student or a stranger
    response = client.get(student_url(school["algebra"], school[person]))
    # Then there is no such page
    assert response.status_code == 404


def test_an_unknown_student_id_is_404(client, school):
    client.force_login(school["teacher"])
    url = reverse("edu_dl:student_detail", kwargs={"slug": "algebra", "student_id": 987654})
    assert client.get(url).status_code == 404


def test_another_courses_teacher_cannot_open_their_own_student_through_this_course(client, school):
    # Given biology's teacher
    client.force_login(school["bio_teacher"])
    # When they try bio_student's page under algebra
    response = client.get(student_url(school["algebra"], school["bio_student"]))
    # Then algebra does not exist for them
    assert response.status_code == 404


def test_the_student_pages_take_no_posts(client, school):
    client.force_login(school["teacher"])
    assert client.post(list_url(school["algebra"])).status_code == 405
    assert client.post(student_url(school["algebra"], school["alice"])).status_code == 405
