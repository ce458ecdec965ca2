"""The teacher's course overview: who may see it, the heatmap (sortable, paged, linked, with its
legend and numbers), the students needing attention, the assessment statistics, the grading
queue and model lines, escaping, and a fixed number of queries whatever the class size."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

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
    CourseMasterySummary,
    Enrollment,
    Item,
    MasteryEstimate,
    Response,
    Skill,
    Submission,
)
from edu_dl.services.class_summary import course_mastery_summary_refresh
from edu_dl.web.overview import student_page_prefix
from tests.factories import ModelVersionFactory
from tests.web.accounts import enroll, make_user
from tests.web.content import shown

pytestmark = pytest.mark.django_db

User = get_user_model()
NOW = timezone.now()


# --- Local helpers -------------------------------------------------------------------------------


def estimate(student, skill: Skill, probability: float, *, evidence: int = 5, days_ago=0.1):
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


def course_url(course: Course) -> str:
    return reverse("edu_dl:course_detail", kwargs={"slug": course.slug})


def student_url(course: Course, student) -> str:
    # edu_dl:student_detail, courses/<slug>/students/<int:student_id>/
    return f"/courses/{course.slug}/students/{student.pk}/"


def row_names(response) -> list[str]:
    return [row.username for row in response.context["mastery"].page.object_list]


def add_quiz(course: Course, title: str, items: list[tuple[str, float]]) -> Assessment:
    quiz = Assessment.objects.create(course=course, title=title, due_at=NOW)
    for position, (item_title, max_score) in enumerate(items):
        item = Item.objects.create(
            course=course, kind=Item.Kind.NUMERIC, title=item_title, max_score=max_score
        )
        AssessmentItem.objects.create(assessment=quiz, item=item, position=position)
    return quiz


def hand_in(student, quiz: Assessment, scores: list[float | None]) -> None:
    graded = None not in scores
    submission = Submission.objects.create(
        student=student,
        assessment=quiz,
        status=Submission.Status.GRADED if graded else Submission.Status.NEEDS_REVIEW,
        submitted_at=NOW,
    )
    for entry, score in zip(quiz.entries.order_by("position"), scores, strict=True):
        Response.objects.create(
            submission=submission,
            item=entry.item,
            score=score,
            status=Response.Status.GRADED if score is not None else Response.Status.NEEDS_REVIEW,
        )


@pytest.fixture
def school():
    """Algebra: a teacher, an assistant, students alice (Alice Able) and bob (Bob Baker), skills
    Adding and Brackets, a quiz of "Sum" (2 marks) and "Product" (1 mark) that both handed in,
    an active KT model (version 3). Biology beside it, a stranger and an admin.

    Estimates: alice Adding 90%, Brackets none; bob Adding 40% after 6 answers (low),
    Brackets 80% now and 95% three weeks ago (down 15 points).
    """
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
    brackets = Skill.objects.create(course=algebra, name="Brackets")
    estimate(people["alice"], adding, 0.9)
    estimate(people["bob"], adding, 0.4, evidence=6)
    estimate(people["bob"], brackets, 0.95, days_ago=21)
    estimate(people["bob"], brackets, 0.8, evidence=9)
    quiz = add_quiz(algebra, "Quiz one", [("Sum", 2), ("Product", 1)])
    hand_in(people["alice"], quiz, [2, 1])
    hand_in(people["bob"], quiz, [1, 0])
    ModelVersionFactory(
        course=algebra,
        version=3,
        artifact_path="kt/algebra/3.pt",
        activated_at=datetime(2025, 1, 2, tzinfo=UTC),
    )
    return {
        "algebra": algebra,
        "biology": biology,
        "Adding": adding,
        "Brackets": brackets,
        "quiz": quiz,
        **people,
    }


# --- Who may see it ------------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["teacher", "assistant", "admin"])
def test_course_staff_see_the_overview(client, school, person):
    client.force_login(school[person])
    response = client.get(course_url(school["algebra"]))
    assert response.status_code == 200
    assert response.templates[0].name == "edu_dl/overview/course_overview.html"
    assert response.context["tab"] == "course_detail"
    assert row_names(response) == ["alice", "bob"]
    content = response.content.decode()
    assert 'href="/static/edu_dl/overview.css"' in content
    assert '<h2 id="heatmap-heading">Class mastery heatmap</h2>' in content


def test_a_student_gets_their_own_assessments_not_the_overview(client, school):
    client.force_login(school["alice"])
    response = client.get(course_url(school["algebra"]))
    assert response.status_code == 200
    template_names = [t.name for t in response.templates]
    assert "edu_dl/overview/course_overview.html" not in template_names
    assert "mastery" not in response.context
    content = response.content.decode()
    for hidden in ["Bob", "bob", "Baker", "Class mastery", "needing attention"]:
        assert not shown(hidden, content), hidden


@pytest.mark.parametrize("person", ["bio_teacher", "bio_student", "stranger"])
def test_people_without_a_role_in_the_course_get_404(client, school, person):
    client.force_login(school[person])
    assert client.get(course_url(school["algebra"])).status_code == 404


def test_anonymous_visitors_are_sent_to_login(client, school):
    url = course_url(school["algebra"])
    response = client.get(url, {"sort": "overall"})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")


# --- The heatmap ---------------------------------------------------------------------------------


def test_each_cell_prints_its_number_in_its_band_and_links_to_the_student_on_that_skill(
    client, school
):
    algebra, alice, bob = school["algebra"], school["alice"], school["bob"]
    client.force_login(school["teacher"])
    content = client.get(course_url(algebra)).content.decode()
    adding, brackets = school["Adding"].pk, school["Brackets"].pk
    # A row: the student's page (a link, keyboard-reachable), the overall, a cell per skill
    assert (
        f'<tr class="heatmap-row"><th scope="row"><a href="{student_url(algebra, alice)}">'
        'Alice Able</a> <span class="detail">alice</span></th>'
        '<td class="h4 overall">90</td>'
        f'<td class="h4"><a href="{student_url(algebra, alice)}?skill={adding}">90</a></td>'
        f'<td class="hn"><a href="{student_url(algebra, alice)}?skill={brackets}">&ndash;'
        '<span class="visually-hidden"> no estimate</span></a></td></tr>'
    ) in content
    assert (
        f'<td class="h2"><a href="{student_url(algebra, bob)}?skill={adding}">40</a></td>'
        f'<td class="h4"><a href="{student_url(algebra, bob)}?skill={brackets}">80</a></td>'
    ) in content
    assert '<td class="h3 overall">60</td>' in content


def test_the_heatmap_has_a_caption_a_legend_and_a_way_past_it(client, school):
    client.force_login(school["teacher"])
    content = client.get(course_url(school["algebra"])).content.decode()
    assert (
        '<caption id="heatmap-caption">Mastery of each skill by student, in percent. '
        "Sorted by student name, ascending.</caption>"
    ) in content
    for band, label in enumerate(
        ["0\u201319%", "20\u201339%", "40\u201359%", "60\u201379%", "80\u2013100%"]
    ):
        assert (
            f'<li><span class="heatmap-swatch h{band}" aria-hidden="true"></span>{label}</li>'
        ) in content
    assert (
        '<span class="heatmap-swatch hn" aria-hidden="true"></span>\u2013 no estimate yet'
        in content
    )
    assert '<a class="heatmap-skip" href="#heatmap-end">Skip past the heatmap</a>' in content
    assert 'src="/static/edu_dl/heatmap.js"' in content


def test_column_headers_are_sort_links_and_the_sorted_one_says_so(client, school):
    client.force_login(school["teacher"])
    content = client.get(course_url(school["algebra"])).content.decode()
    adding = school["Adding"].pk
    # sorted by name ascending: its header flips to descending, the others start ascending
    assert (
        '<th scope="col" aria-sort="ascending"><a href="?sort=name&amp;order=desc#heatmap-heading">'
        '<span>Student</span><span aria-hidden="true"> ▲</span></a></th>'
    ) in content
    assert (
        '<th scope="col"><a href="?sort=overall&amp;order=asc#heatmap-heading">'
        "<span>Overall</span></a></th>"
    ) in content
    assert (
        f'<th scope="col" class="skill-column" title="Adding"><a href="?sort=skill-{adding}'
        '&amp;order=asc#heatmap-heading"><span>Adding</span></a></th>'
    ) in content
    assert content.count("aria-sort=") == 1


def test_sorting_by_a_skill_descending_orders_the_rows_and_marks_the_header(client, school):
    # Given a third student with 60% in Adding
    carol = make_user("carol")
    enroll(carol, school["algebra"])
    estimate(carol, school["Adding"], 0.6)
    adding = school["Adding"].pk
    client.force_login(school["teacher"])
    response = client.get(
        course_url(school["algebra"]), {"sort": f"skill-{adding}", "order": "desc"}
    )
    assert row_names(response) == ["alice", "carol", "bob"]
    content = response.content.decode()
    assert (
        f'<th scope="col" aria-sort="descending" class="skill-column" title="Adding">'
        f'<a href="?sort=skill-{adding}&amp;order=asc#heatmap-heading"><span>Adding</span>'
        '<span aria-hidden="true"> ▼</span></a></th>'
    ) in content
    assert "Sorted by mastery of Adding, descending." in content


def test_sorting_by_overall_ascending_puts_the_weakest_first(client, school):
    client.force_login(school["teacher"])
    response = client.get(course_url(school["algebra"]), {"sort": "overall", "order": "asc"})
    assert row_names(response) == ["bob", "alice"]


def test_a_nonsense_sort_falls_back_to_the_name(client, school):
    client.force_login(school["teacher"])
    response = client.get(course_url(school["algebra"]), {"sort": "<x>", "order": "sideways"})
    assert response.status_code == 200
    assert row_names(response) == ["alice", "bob"]
    assert "&lt;x&gt;" not in response.content.decode()


def test_the_heatmap_shows_a_hundred_students_a_page_keeping_the_order(client, school):
    # Given 103 more students (105 in all)
    algebra = school["algebra"]
    users = User.objects.bulk_create(User(username=f"student{n:03d}") for n in range(103))
    Enrollment.objects.bulk_create(Enrollment(user=user, course=algebra) for user in users)
    client.force_login(school["teacher"])
    # When the teacher opens the second page, sorted by name descending
    response = client.get(course_url(algebra), {"sort": "name", "order": "desc", "page": 2})
    # Then it has the last five, and the page links keep the order
    assert row_names(response) == ["student002", "student001", "student000", "bob", "alice"]
    content = response.content.decode()
    assert content.count('<tr class="heatmap-row"') == 5
    assert 'href="?sort=name&amp;order=desc&amp;page=1#heatmap-heading" rel="prev"' in content
    assert "Page 2 of 2" in content
    assert "Students 101 to 105 of 105." in content


def test_names_are_escaped_everywhere(client, school):
    # Given a student whose name is markup, with a low skill so that the attention list names
    # them too, and a skill whose name is markup
    villain = make_user("villain", first_name="<script>alert(1)</script>")
    enroll(villain, school["algebra"])
    sneaky = Skill.objects.create(course=school["algebra"], name='<b onclick="x">Sneaky</b>')
    estimate(villain, sneaky, 0.1, evidence=5)
    client.force_login(school["teacher"])
    content = client.get(course_url(school["algebra"])).content.decode()
    assert "<script>alert(1)</script>" not in content
    assert '<b onclick="x">' not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</a>" in content
    assert content.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # heatmap and attention
    assert "<span>&lt;b onclick=&quot;x&quot;&gt;Sneaky&lt;/b&gt;</span>" in content


def test_an_empty_course_says_what_is_missing(client, school):
    empty = Course.objects.create(slug="empty", title="Empty")
    enroll(school["teacher"], empty, Enrollment.Role.TEACHER)
    client.force_login(school["teacher"])
    content = client.get(course_url(empty)).content.decode()
    assert "No students are enrolled yet." in content
    assert "No student has a skill needing attention." in content
    assert "No published assessments yet." in content
    assert "Knowledge tracing: no model is active yet" in content


def test_the_student_page_prefix_is_that_of_the_student_list(school):
    # edu_dl:student_detail is courses/<slug>/students/<id>/, below the student list
    assert student_page_prefix(school["algebra"]) == reverse(
        "edu_dl:student_list", kwargs={"slug": "algebra"}
    )


# --- Students needing attention ------------------------------------------------------------------


def test_students_needing_attention_are_named_with_why(client, school):
    algebra, bob = school["algebra"], school["bob"]
    client.force_login(school["teacher"])
    content = client.get(course_url(algebra)).content.decode()
    assert (
        "A skill needs attention when its mastery is below 60% after at least 3 answers, or "
        "when it fell by at least 10 percentage points over the last 14 days."
    ) in content
    assert "1 student has skills needing attention." in content
    page = student_url(algebra, bob)
    assert f'<a href="{page}">Bob Baker</a> <span class="detail">bob</span>' in content
    assert (
        f'<li><a href="{page}?skill={school["Adding"].pk}">Adding</a>:\n'
        "          mastery 40% after 6 answers</li>"
    ) in content
    assert (
        f'<li><a href="{page}?skill={school["Brackets"].pk}">Brackets</a>:\n'
        "          mastery 80%; down 15 percentage points in 14 days</li>"
    ) in content


# --- Assessments, the grading queue and the model ------------------------------------------------


def test_assessment_statistics_show_the_distribution_mean_median_and_missed_items(client, school):
    client.force_login(school["teacher"])
    response = client.get(course_url(school["algebra"]))
    content = response.content.decode()
    (entry,) = response.context["assessments"]
    # alice 3 of 3 (100%), bob 1 of 3 (33%)
    assert entry["chart"].title == "Scores in Quiz one"
    assert [(bar.label, bar.value_text) for bar in entry["chart"].bars] == [
        ("0\u20139%", "0"),
        ("10\u201319%", "0"),
        ("20\u201329%", "0"),
        ("30\u201339%", "1"),
        ("40\u201349%", "0"),
        ("50\u201359%", "0"),
        ("60\u201369%", "0"),
        ("70\u201379%", "0"),
        ("80\u201389%", "0"),
        ("90\u2013100%", "1"),
    ]
    assert '<h3 id="assessment-' in content
    assert "<dt>Mean score</dt><dd>67%</dd>" in content
    assert "<dt>Median score</dt><dd>67%</dd>" in content
    assert "<dd>2 submissions by 2 students</dd>" in content
    assert (
        "<li><strong>Product</strong>: mean score 50% of full marks; 1 of 2 below full marks</li>"
        in content
    )
    assert (
        "<li><strong>Sum</strong>: mean score 75% of full marks; 1 of 2 below full marks</li>"
        in content
    )
    assert "Scores in Quiz one" in content


def test_the_grading_queue_and_the_model_have_a_line_each(client, school):
    # Given one response waiting for review
    carol = make_user("carol")
    enroll(carol, school["algebra"])
    hand_in(carol, school["quiz"], [None, 1])
    client.force_login(school["teacher"])
    content = client.get(course_url(school["algebra"])).content.decode()
    queue = reverse("edu_dl:review_queue", kwargs={"slug": "algebra"})
    models = reverse("edu_dl:models_page", kwargs={"slug": "algebra"})
    assert f'<a href="{queue}">Grading queue: 1 response waiting</a>' in content
    assert "Knowledge tracing: model version 3 (dkt) is active." in content
    assert f'<a href="{models}">Models and training</a>' in content


# --- Queries -------------------------------------------------------------------------------------


def add_student(course: Course, number: int, skills: list[Skill], quiz: Assessment) -> None:
    """A student with a trend in every skill (90% three weeks ago, lower now) and a graded quiz."""
    student = make_user(f"pupil{number:02d}", first_name=f"Pupil {number}")
    enroll(student, course)
    for skill in skills:
        estimate(student, skill, 0.9, days_ago=20)
        estimate(student, skill, 0.3 + 0.05 * number, evidence=4)
    hand_in(student, quiz, [number % 3, 1])


def test_the_overview_takes_the_same_queries_for_3_by_2_and_12_by_6(client, school):
    # Given a class of 3 students x 2 skills (alice, bob and pupil00; Adding and Brackets)
    algebra, quiz = school["algebra"], school["quiz"]
    add_student(algebra, 0, [school["Adding"], school["Brackets"]], quiz)
    client.force_login(school["teacher"])
    course_mastery_summary_refresh(course=algebra)  # as the worker does after new estimates
    with CaptureQueriesContext(connection) as small_class:
        small = client.get(course_url(algebra), {"sort": "overall"})
    # When it grows to 12 students x 6 skills
    for name in ("Counting", "Dividing", "Exponents", "Fractions"):
        Skill.objects.create(course=algebra, name=name)
    skills = list(Skill.objects.filter(course=algebra))
    for number in range(1, 10):
        add_student(algebra, number, skills, quiz)
    course_mastery_summary_refresh(course=algebra)
    with CaptureQueriesContext(connection) as big_class:
        big = client.get(course_url(algebra), {"sort": "overall"})
    # Then the page shows them all with the same number of queries
    assert (
        len(small.context["mastery"].page.object_list),
        len(small.context["mastery"].skills),
    ) == (3, 2)
    assert (len(big.context["mastery"].page.object_list), len(big.context["mastery"].skills)) == (
        12,
        6,
    )
    assert big.content.decode().count('<tr class="heatmap-row"') == 12
    assert len(big.context["mastery"].needing_attention) == 11
    assert len(big_class.captured_queries) == len(small_class.captured_queries)
    assert big.context["mastery"].summary_as_of is not None


def test_the_row_html_has_no_unescaped_user_text(client, school):
    # Every tag in a heatmap row is one the page writes itself
    client.force_login(school["teacher"])
    content = client.get(course_url(school["algebra"])).content.decode()
    rows = re.findall(r'<tr class="heatmap-row">.*?</tr>', content)
    assert len(rows) == 2
    tags = {tag for row in rows for tag in re.findall(r"<(/?\w+)", row)}
    assert tags == {"tr", "/tr", "th", "/th", "td", "/td", "a", "/a", "span", "/span"}


# --- The class summary: stored by a worker, computed by the page when it will not do --------------


def heavy_queries(queries) -> list[str]:
    """The queries that rank older mastery estimates (the drops over the window); the
    assessment statistics rank submissions, which is cheap."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if "ROW_NUMBER" in q["sql"].upper() and "masteryestimate" in q["sql"].lower()
    ]


def test_with_a_stored_summary_the_page_reads_it_and_says_as_of_when(client, school):
    # Given the summary a worker stored at 10:30 (UTC, the site's time zone in tests)
    algebra = school["algebra"]
    summary = course_mastery_summary_refresh(course=algebra)
    stored_at = datetime(2031, 5, 6, 10, 30, tzinfo=UTC)
    CourseMasterySummary.objects.filter(pk=summary.pk).update(computed_at=stored_at)
    client.force_login(school["teacher"])
    # When the teacher opens the overview
    with CaptureQueriesContext(connection) as queries:
        response = client.get(course_url(algebra), {"sort": "overall"})
    # Then it ranks no estimate itself, shows what the summary holds and says when it was made
    assert heavy_queries(queries) == []
    mastery = response.context["mastery"]
    assert mastery.summary_as_of == stored_at
    assert [s.username for s in mastery.needing_attention] == ["bob"]
    assert row_names(response) == ["bob", "alice"]
    content = response.content.decode()
    assert (
        '<p class="detail" id="summary-as-of">'
        "Attention and overall mastery as of May 6, 2031, 10:30 a.m.</p>"
    ) in content
    assert CourseMasterySummary.objects.get().computed_at == stored_at  # not recomputed


def test_without_a_summary_the_first_view_computes_and_stores_it(client, school):
    algebra = school["algebra"]
    client.force_login(school["teacher"])
    assert not CourseMasterySummary.objects.exists()
    # When the teacher opens the overview the first time
    with CaptureQueriesContext(connection) as first:
        response = client.get(course_url(algebra))
    # Then the page computed the summary (the totals, then the described students' skills)
    # and says no "as of"
    assert len(heavy_queries(first)) == 2
    assert response.context["mastery"].summary_as_of is None
    assert 'id="summary-as-of"' not in response.content.decode()
    assert [s.username for s in response.context["mastery"].needing_attention] == ["bob"]
    summary = CourseMasterySummary.objects.get(course=algebra)
    assert sorted(summary.students) == sorted([str(school["alice"].pk), str(school["bob"].pk)])
    # And the next view reads it
    with CaptureQueriesContext(connection) as second:
        again = client.get(course_url(algebra))
    assert heavy_queries(second) == []
    assert again.context["mastery"].summary_as_of == summary.computed_at


def test_a_summary_missing_estimates_is_used_within_the_lag_and_recomputed_after(
    client, school, settings
):
    # Given a stored summary, then carol with a low skill that it does not know yet
    algebra = school["algebra"]
    course_mastery_summary_refresh(course=algebra)
    carol = make_user("carol")
    enroll(carol, algebra)
    estimate(carol, school["Adding"], 0.1, evidence=8)
    client.force_login(school["teacher"])
    # When the teacher looks within the lag: the summary stands (a worker is on its way)
    settings.EDU_DL = {**settings.EDU_DL, "MASTERY_SUMMARY_MAX_LAG_S": 3600}
    within = client.get(course_url(algebra)).context["mastery"]
    assert [s.username for s in within.needing_attention] == ["bob"]
    assert within.summary_as_of is not None
    # and after it (the workers are behind): the page computes it again
    settings.EDU_DL = {**settings.EDU_DL, "MASTERY_SUMMARY_MAX_LAG_S": 0}
    after = client.get(course_url(algebra)).context["mastery"]
    assert [s.username for s in after.needing_attention] == ["bob", "carol"]
    assert after.summary_as_of is None


def test_a_summary_of_another_rule_is_not_used(client, school, settings):
    algebra = school["algebra"]
    course_mastery_summary_refresh(course=algebra)
    settings.EDU_DL = {**settings.EDU_DL, "MASTERY_ATTENTION_BELOW": 0.3}
    client.force_login(school["teacher"])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(course_url(algebra))
    # bob's 40% is no longer low; his drop still counts
    bob = response.context["mastery"].needing_attention[0]
    assert [(s.skill_name, s.is_low) for s in bob.skills] == [("Brackets", False)]
    assert len(heavy_queries(queries)) == 2
    assert CourseMasterySummary.objects.get().rule["below"] == 0.3


def test_a_student_sees_no_summary_and_computes_none(client, school):
    client.force_login(school["alice"])
    content = client.get(course_url(school["algebra"])).content.decode()
    assert "as of" not in content
    assert not CourseMasterySummary.objects.exists()
