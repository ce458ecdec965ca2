"""The student portal: my assessments, taking one (drafts, handing in once), my results, my
progress and what to study next; each page shows only the signed-in student's own records."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from edu_dl.models import (
    AssessmentDraft,
    Interaction,
    MasteryEstimate,
    Recommendation,
    ResourceInteraction,
    Response,
    Submission,
)
from edu_dl.selectors.portal import mastery_history
from edu_dl.services.drafts import draft_save
from edu_dl.services.review import response_override
from edu_dl.services.submissions import submission_create
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ItemFactory,
    ModelVersionFactory,
    ResourceFactory,
    SkillFactory,
    UserFactory,
)
from tests.web.content import shown

pytestmark = pytest.mark.django_db

User = get_user_model()
TOKEN = "0123456789abcdef0123456789abcdef"
SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
STUDENT_PAGES = ["my_results", "my_progress", "my_suggestions"]


@pytest.fixture
def portal(sent):
    """Algebra with a teacher, students alice and bob, skills Adding and Counting, and an open
    quiz with one item of every kind; biology beside it with its own teacher and student; a
    stranger."""
    algebra = CourseFactory(slug="algebra", title="Algebra")
    biology = CourseFactory(slug="biology", title="Biology")
    adding = SkillFactory(course=algebra, name="Adding")
    counting = SkillFactory(course=algebra, name="Counting")
    items = {
        "colour": ItemFactory(course=algebra, single_choice=True, title="Sky colour"),
        "primes": ItemFactory(course=algebra, multiple_choice=True, title="Primes"),
        "sum": ItemFactory(course=algebra, numeric=True, title="Six sevens", skills=[adding]),
        "capital": ItemFactory(course=algebra, exact_text=True, title="Capital"),
        "why": ItemFactory(course=algebra, title="Why blue", max_score=4),
        "essay": ItemFactory(course=algebra, kind="essay", title="Essay", reference_answer=""),
    }
    quiz = AssessmentFactory(course=algebra, title="Quiz one", items=list(items.values()))

    def person(username: str, course=None, role: str = "student"):
        user = UserFactory(username=username)
        if course is not None:
            EnrollmentFactory(course=course, user=user, role=role)
        return user

    return {
        "algebra": algebra,
        "biology": biology,
        "adding": adding,
        "counting": counting,
        "items": items,
        "quiz": quiz,
        "alice": person("alice", algebra),
        "bob": person("bob", algebra),
        "teacher": person("teacher", algebra, "teacher"),
        "bio_teacher": person("bio_teacher", biology, "teacher"),
        "bio_student": person("bio_student", biology),
        "stranger": person("stranger"),
    }


# --- Helpers -------------------------------------------------------------------------------------


def page_url(name: str, course, **kwargs) -> str:
    return reverse(f"edu_dl:{name}", kwargs={"slug": course.slug, **kwargs})


def take_url(data, assessment=None) -> str:
    assessment = assessment or data["quiz"]
    return page_url("assessment_take", data["algebra"], assessment_id=assessment.pk)


def full_answers(data) -> dict[str, object]:
    return {
        "colour": "a",
        "primes": ["a", "c"],
        "sum": "42",
        "capital": "Paris",
        "why": "Air scatters blue light.",
        "essay": SCRIPT,
    }


def form_data(data, answers: dict[str, object], action: str, token: str = TOKEN, **extra):
    posted = {"form_token": token, "action": action, **extra}
    for name, value in answers.items():
        posted[f"item_{data['items'][name].pk}"] = value
    return posted


def tag_named(content: str, name: str) -> str:
    """The opening tag of the (first) input or textarea called ``name``."""
    match = re.search(rf'<(?:input|textarea)[^>]*name="{name}"[^>]*>', content)
    assert match, name
    return match.group(0)


def written() -> tuple:
    """Everything a take page may write."""
    return (
        list(AssessmentDraft.objects.values_list("student__username", "answers")),
        list(Submission.objects.values_list("student__username", "assessment_id")),
        Response.objects.count(),
    )


def hand_in(data, student, answers: dict[str, object] | None = None, **options) -> Submission:
    answers = full_answers(data) if answers is None else answers
    return submission_create(
        student=student,
        assessment=options.pop("assessment", data["quiz"]),
        answers={data["items"][name].pk: value for name, value in answers.items()},
        **options,
    )


def add_classmates(data, count: int, *, start: int = 0) -> None:
    """More students, each with a submission, a draft, mastery and a suggestion."""
    video = ResourceFactory(course=data["algebra"], title=f"Video {start}")
    for number in range(start, start + count):
        student = EnrollmentFactory(
            course=data["algebra"], user=UserFactory(username=f"pupil{number:03d}")
        ).user
        hand_in(data, student)
        other = AssessmentFactory(course=data["algebra"], items=[data["items"]["colour"]])
        draft_save(student=student, assessment=other, answers={})
        MasteryEstimate.objects.create(
            student=student, skill=data["adding"], probability=0.5, as_of=timezone.now()
        )
        Recommendation.objects.create(
            student=student,
            course=data["algebra"],
            resource=video,
            skill=data["adding"],
            rank=1,
            score=0.5,
            reason="r",
        )


def query_count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries.captured_queries)


# --- Who may open the student's pages ------------------------------------------------------------


@pytest.mark.parametrize("name", [*STUDENT_PAGES, "assessment_take"])
@pytest.mark.parametrize(
    ("person", "status"),
    [("teacher", 403), ("bio_teacher", 404), ("bio_student", 404), ("stranger", 404)],
)
def test_only_the_courses_students_open_their_pages(client, portal, name, person, status):
    client.force_login(portal[person])
    url = take_url(portal) if name == "assessment_take" else page_url(name, portal["algebra"])

    assert client.get(url).status_code == status


@pytest.mark.parametrize("name", [*STUDENT_PAGES, "assessment_take"])
def test_anonymous_visitors_are_sent_to_login(client, portal, name):
    url = take_url(portal) if name == "assessment_take" else page_url(name, portal["algebra"])

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


# --- My assessments ------------------------------------------------------------------------------


def test_the_course_page_lists_my_assessments_with_their_state_and_what_i_can_do(client, portal):
    # given an open quiz alice handed in, one she keeps a draft of, one not open yet, one past
    # its due date, one without questions and one unpublished
    now = timezone.now()
    colour = portal["items"]["colour"]
    submission = hand_in(portal, portal["alice"])
    drafted = AssessmentFactory(course=portal["algebra"], title="Drafted", items=[colour])
    draft_save(student=portal["alice"], assessment=drafted, answers={colour.pk: "b"})
    AssessmentFactory(
        course=portal["algebra"],
        title="Upcoming",
        items=[colour],
        opens_at=now + timedelta(days=1),
        due_at=now + timedelta(days=2),
    )
    AssessmentFactory(
        course=portal["algebra"],
        title="Past",
        items=[colour],
        opens_at=now - timedelta(days=2),
        due_at=now - timedelta(days=1),
    )
    AssessmentFactory(course=portal["algebra"], title="Empty")
    AssessmentFactory(course=portal["algebra"], title="Hidden", items=[colour], is_published=False)
    client.force_login(portal["alice"])

    page = client.get(page_url("course_detail", portal["algebra"]))

    assert page.status_code == 200
    assert [
        (row.title, row.item_count, row.availability, row.submission_id, row.has_draft)
        for row in page.context["assessments"]
    ] == [
        ("Past", 1, "closed", None, False),
        ("Upcoming", 1, "upcoming", None, False),
        ("Quiz one", 6, "open", submission.pk, False),
        ("Drafted", 1, "open", None, True),
        ("Empty", 0, "open", None, False),
    ]
    content = page.content.decode()
    detail = page_url("submission_detail", portal["algebra"], submission_id=submission.pk)
    assert f'<td><a href="{detail}">Submitted, being graded</a></td>' in content
    assert (
        f'<a href="{take_url(portal)}">Answer again<span class="visually-hidden"> Quiz one'
        "</span></a>" in content
    )
    assert "<td>Draft saved</td>" in content
    assert (
        f'<a href="{take_url(portal, drafted)}">Continue my draft<span class="visually-hidden">'
        " Drafted</span></a>" in content
    )
    assert "<td>Opens " in content
    assert "<td>Closed</td>" in content
    assert "<td>No questions yet</td>" in content
    assert "Hidden" not in content


def test_the_course_page_costs_the_same_queries_for_a_bigger_class(client, portal):
    hand_in(portal, portal["alice"])
    client.force_login(portal["alice"])
    url = page_url("course_detail", portal["algebra"])
    add_classmates(portal, 2)
    small = query_count(client, url)

    add_classmates(portal, 20, start=2)

    assert query_count(client, url) == small


# --- Taking an assessment ------------------------------------------------------------------------


def test_the_take_page_has_a_labelled_input_for_every_kind_of_item(client, portal):
    items = portal["items"]
    client.force_login(portal["alice"])

    page = client.get(take_url(portal))

    assert page.status_code == 200
    content = page.content.decode()
    colour, primes = items["colour"].pk, items["primes"].pk
    # a single choice is a radio group in a fieldset with a legend; a multiple choice checkboxes
    assert (
        f'<fieldset aria-describedby="id_item_{colour}_prompt">\n'
        f'        <legend class="question-label">1. Sky colour' in content
    )
    assert (
        f'<input type="radio" name="item_{colour}" value="a" id="id_item_{colour}_0"> '
        f'<label for="id_item_{colour}_0">Blue</label>' in content
    )
    assert '<legend class="question-label">2. Primes' in content
    assert (
        f'<input type="checkbox" name="item_{primes}" value="c" id="id_item_{primes}_2"> '
        f'<label for="id_item_{primes}_2">5</label>' in content
    )
    # a numeric item is a text input with a decimal keyboard, so the server sees what was typed
    number = tag_named(content, f"item_{items['sum'].pk}")
    assert 'type="text"' in number
    assert 'inputmode="decimal"' in number
    assert f'<label class="question-label" for="id_item_{items["sum"].pk}">3. Six sevens' in content
    # exact text: a text input; short answer and essay: textareas, the essay's long, both with
    # a counter of the character limit
    assert 'type="text"' in tag_named(content, f"item_{items['capital'].pk}")
    why = tag_named(content, f"item_{items['why'].pk}")
    essay = tag_named(content, f"item_{items['essay'].pk}")
    assert why.startswith("<textarea") and 'rows="4"' in why
    assert essay.startswith("<textarea") and 'rows="16"' in essay
    assert 'maxlength="20000"' in essay
    assert f'aria-describedby="id_item_{items["essay"].pk}_prompt id_item_' in essay
    assert (
        f'<p class="detail char-count" id="id_item_{items["essay"].pk}_count" '
        f'data-count-for="id_item_{items["essay"].pk}" '
        'data-template="{count} of 20000 characters">0 of 20000 characters</p>' in content
    )
    # the form carries its own token, and the answer key is nowhere
    assert re.search(r'name="form_token" value="[0-9a-f]{32}"', content)
    assert "Paris" not in content


def test_saving_a_draft_keeps_the_answers_and_reopening_restores_them(client, portal):
    items = portal["items"]
    client.force_login(portal["alice"])
    answers = {"colour": "b", "primes": ["a", "d"], "sum": "4.50", "why": "Line one\r\nline two"}

    saved = client.post(take_url(portal), form_data(portal, answers, "save"))

    assert saved.status_code == 302
    assert saved["Location"] == take_url(portal)
    assert written() == (
        [
            (
                "alice",
                {
                    str(items["colour"].pk): "b",
                    str(items["primes"].pk): ["a", "d"],
                    str(items["sum"].pk): "4.50",
                    str(items["why"].pk): "Line one\nline two",
                },
            )
        ],
        [],
        0,
    )
    reopened = client.get(take_url(portal)).content.decode()
    assert f'value="b" id="id_item_{items["colour"].pk}_1" checked>' in reopened
    assert f'value="d" id="id_item_{items["primes"].pk}_3" checked>' in reopened
    assert f'value="a" id="id_item_{items["primes"].pk}_0" checked>' in reopened
    assert 'value="4.50"' in tag_named(reopened, f"item_{items['sum'].pk}")
    assert ">\nLine one\nline two</textarea>" in reopened
    assert "Your draft saved on" in reopened
    assert "Discard draft" in reopened


def test_a_comma_in_a_number_is_shown_beside_the_item_and_nothing_is_written(client, portal):
    number = portal["items"]["sum"].pk
    client.force_login(portal["alice"])

    for action in ("save", "submit"):
        page = client.post(
            take_url(portal),
            form_data(portal, {**full_answers(portal), "sum": "4,5"}, action),
        )

        assert page.status_code == 400
        content = page.content.decode()
        assert (
            f'<p class="field-error" id="id_item_{number}_error">Enter a number, such as 4.5 or '
            "-3: digits with a point for decimals (not a comma).</p>" in content
        )
        assert 'aria-invalid="true"' in tag_named(content, f"item_{number}")
        assert 'value="4,5"' in tag_named(content, f"item_{number}")
        assert written() == ([], [], 0)


def test_handing_in_submits_deletes_the_draft_and_shows_the_submission(client, portal):
    client.force_login(portal["alice"])
    client.post(take_url(portal), form_data(portal, {"colour": "b"}, "save"))

    handed = client.post(take_url(portal), form_data(portal, full_answers(portal), "submit"))

    submission = Submission.objects.get()
    assert handed.status_code == 302
    assert handed["Location"] == page_url(
        "submission_detail", portal["algebra"], submission_id=submission.pk
    )
    assert submission.student == portal["alice"]
    assert submission.idempotency_key == f"portal-take:{portal['quiz'].pk}:{TOKEN}"
    assert dict(submission.responses.values_list("item__title", "answer")) == {
        "Sky colour": "a",
        "Primes": ["a", "c"],
        "Six sevens": 42.0,
        "Capital": "Paris",
        "Why blue": "Air scatters blue light.",
        "Essay": SCRIPT,
    }
    assert AssessmentDraft.objects.count() == 0


def test_a_double_click_hands_in_once(client, portal):
    client.force_login(portal["alice"])
    posted = form_data(portal, full_answers(portal), "submit")

    first = client.post(take_url(portal), posted)
    second = client.post(take_url(portal), posted)

    assert Submission.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_a_second_hand_in_from_a_new_page_is_a_new_submission_and_the_earlier_is_shown(
    client, portal
):
    earlier = hand_in(portal, portal["alice"])
    client.force_login(portal["alice"])

    content = client.get(take_url(portal)).content.decode()
    client.post(take_url(portal), form_data(portal, full_answers(portal), "submit", token="f" * 32))

    earlier_url = page_url("submission_detail", portal["algebra"], submission_id=earlier.pk)
    assert f'<a href="{earlier_url}">See that submission</a>' in content
    assert Submission.objects.filter(student=portal["alice"]).count() == 2


def test_unanswered_questions_are_refused_unless_the_student_confirms(client, portal):
    client.force_login(portal["alice"])
    some = {"colour": "a", "sum": "42"}

    refused = client.post(take_url(portal), form_data(portal, some, "submit"))

    assert refused.status_code == 400
    content = refused.content.decode()
    assert (
        "<li>4 questions have no answer. Answer them, or tick “Hand in even if some questions "
        "have no answer”.</li>" in content
    )
    why = portal["items"]["why"].pk
    assert (
        f'<p class="field-error" id="id_item_{why}_error">This question has no answer yet.</p>'
        in content
    )
    assert written() == ([], [], 0)

    confirmed = client.post(
        take_url(portal), form_data(portal, some, "submit", hand_in_unanswered="on")
    )

    assert confirmed.status_code == 302
    assert Submission.objects.get().responses.filter(answer__isnull=True).count() == 4


def test_an_answer_with_markup_is_stored_as_written_and_shown_escaped(client, portal):
    client.force_login(portal["alice"])
    client.post(take_url(portal), form_data(portal, {"essay": SCRIPT}, "save"))

    draft_page = client.get(take_url(portal)).content.decode()
    client.post(take_url(portal), form_data(portal, full_answers(portal), "submit"))
    submission = Submission.objects.get()
    detail = client.get(
        page_url("submission_detail", portal["algebra"], submission_id=submission.pk)
    ).content.decode()
    results = client.get(page_url("my_results", portal["algebra"])).content.decode()

    assert submission.responses.get(item=portal["items"]["essay"]).answer == SCRIPT
    for content in (draft_page, detail, results):
        assert ESCAPED_SCRIPT in content
        assert SCRIPT not in content


def test_discarding_the_draft_forgets_the_answers(client, portal):
    draft_save(
        student=portal["bob"],
        assessment=portal["quiz"],
        answers={portal["items"]["colour"].pk: "a"},
    )
    draft_save(
        student=portal["alice"],
        assessment=portal["quiz"],
        answers={portal["items"]["colour"].pk: "b"},
    )
    client.force_login(portal["alice"])

    discarded = client.post(take_url(portal), {"action": "discard"}, follow=True)

    assert discarded.redirect_chain == [(take_url(portal), 302)]
    assert [str(message) for message in discarded.context["messages"]] == [
        "Your draft was discarded."
    ]
    assert list(AssessmentDraft.objects.values_list("student__username", flat=True)) == ["bob"]


def test_a_closed_assessment_shows_why_and_refuses_answers(client, portal):
    now = timezone.now()
    past = AssessmentFactory(
        course=portal["algebra"],
        title="Past",
        items=[portal["items"]["colour"]],
        opens_at=now - timedelta(days=2),
        due_at=now - timedelta(days=1),
    )
    client.force_login(portal["alice"])

    shown = client.get(take_url(portal, past)).content.decode()
    refused = {
        action: client.post(
            take_url(portal, past),
            {"form_token": TOKEN, "action": action, f"item_{portal['items']['colour'].pk}": "a"},
        )
        for action in ("save", "submit")
    }

    assert "It no longer takes answers." in shown
    assert '<form method="post" action="' + take_url(portal, past) not in shown
    assert {action: page.status_code for action, page in refused.items()} == {
        "save": 409,
        "submit": 409,
    }
    assert written() == ([], [], 0)


@pytest.mark.parametrize(
    ("person", "status"), [("teacher", 403), ("bio_student", 404), ("stranger", 404)]
)
def test_others_cannot_save_or_hand_in(client, portal, person, status):
    client.force_login(portal[person])

    for action in ("save", "submit", "discard"):
        page = client.post(take_url(portal), form_data(portal, full_answers(portal), action))
        assert page.status_code == status

    assert written() == ([], [], 0)


def test_an_unpublished_or_another_courses_assessment_is_not_found(client, portal):
    hidden = AssessmentFactory(
        course=portal["algebra"], items=[portal["items"]["colour"]], is_published=False
    )
    elsewhere = AssessmentFactory(course=portal["biology"], title="Cells")
    client.force_login(portal["alice"])

    assert client.get(take_url(portal, hidden)).status_code == 404
    assert client.post(take_url(portal, hidden), {"action": "save"}).status_code == 404
    assert client.get(take_url(portal, elsewhere)).status_code == 404


def test_a_post_without_its_page_token_is_refused_and_writes_nothing(client, portal):
    client.force_login(portal["alice"])

    page = client.post(
        take_url(portal), form_data(portal, full_answers(portal), "submit", token="forged")
    )

    assert page.status_code == 400
    assert "<li>This page is out of date: reload it and answer again.</li>" in (
        page.content.decode()
    )
    assert written() == ([], [], 0)


def test_the_take_page_costs_the_same_queries_for_a_bigger_class(client, portal):
    client.force_login(portal["alice"])
    client.post(take_url(portal), form_data(portal, {"colour": "a"}, "save"))
    add_classmates(portal, 2)
    small = query_count(client, take_url(portal))

    add_classmates(portal, 20, start=2)

    assert query_count(client, take_url(portal)) == small


# --- My results ----------------------------------------------------------------------------------


def test_my_results_show_released_scores_and_say_what_waits_without_hidden_scores(client, portal):
    # given alice's quiz: rule grades released, her short answer with a model's hidden
    # suggestion waiting for review, her essay accepted by the teacher with feedback
    submission = hand_in(portal, portal["alice"])
    why = submission.responses.get(item=portal["items"]["why"])
    Response.objects.filter(pk=why.pk).update(
        status="needs_review", score=3.25, grade_source="model", confidence=0.61
    )
    response_override(
        response=submission.responses.get(item=portal["items"]["essay"]),
        actor=portal["teacher"],
        score=0.5,
        feedback="Mind the <b>tags</b>",
    )
    hand_in(portal, portal["bob"], {"colour": "b"})
    client.force_login(portal["alice"])

    page = client.get(page_url("my_results", portal["algebra"]))

    assert page.status_code == 200
    [result] = page.context["results"]
    assert result.submission == submission
    assert [(view.item_title, view.score, view.status) for view in result.responses] == [
        ("Sky colour", 1.0, "graded"),
        ("Primes", 1.0, "graded"),
        ("Six sevens", 1.0, "graded"),
        ("Capital", 1.0, "graded"),
        ("Why blue", None, "needs_review"),
        ("Essay", 0.5, "graded"),
    ]
    assert result.total_score is None
    content = page.content.decode()
    assert '<a href="/courses/algebra/results/" aria-current="page">My results</a>' in content
    assert "<td>Waiting for the teacher</td>" in content
    assert "<td>0.50 of 1</td>" in content
    assert "<td>Mind the &lt;b&gt;tags&lt;/b&gt;</td>" in content
    assert "1 answer is not graded for you yet." in content
    for hidden in ("3.25", "0.61", "61%", "bob"):
        assert not shown(hidden, content), hidden


def test_grades_held_until_the_due_date_are_shown_as_held(client, portal):
    now = timezone.now()
    held = AssessmentFactory(
        course=portal["algebra"],
        title="Held quiz",
        items=[portal["items"]["colour"]],
        opens_at=now - timedelta(days=1),
        due_at=now + timedelta(days=1),
        hold_grades_until_due=True,
    )
    submission = hand_in(portal, portal["alice"], {"colour": "a"}, assessment=held)
    client.force_login(portal["alice"])

    results = client.get(page_url("my_results", portal["algebra"]))
    detail = client.get(
        page_url("submission_detail", portal["algebra"], submission_id=submission.pk)
    )

    [result] = results.context["results"]
    assert result.grades_held is True
    assert [view.score for view in result.responses] == [None]
    due = f"{held.due_at:%Y}"
    for page in (results, detail):
        content = page.content.decode()
        assert "<td>Held until the due date, " in content
        assert due in content
        assert "1 of 1" not in content


def test_my_results_cost_the_same_queries_for_a_bigger_class(client, portal):
    hand_in(portal, portal["alice"])
    client.force_login(portal["alice"])
    url = page_url("my_results", portal["algebra"])
    add_classmates(portal, 2)
    small = query_count(client, url)

    add_classmates(portal, 20, start=2)

    assert query_count(client, url) == small


def test_another_students_submission_is_not_found(client, portal):
    submission = hand_in(portal, portal["bob"])
    client.force_login(portal["alice"])

    page = client.get(page_url("submission_detail", portal["algebra"], submission_id=submission.pk))

    assert page.status_code == 404


def test_a_submission_page_has_the_course_tabs(client, portal):
    submission = hand_in(portal, portal["alice"])
    client.force_login(portal["alice"])

    content = client.get(
        page_url("submission_detail", portal["algebra"], submission_id=submission.pk)
    ).content.decode()

    assert '<nav class="course-nav" aria-label="Pages of Algebra">' in content
    assert '<a href="/courses/algebra/results/" aria-current="page">My results</a>' in content
    assert "<h2>Quiz one</h2>" in content


# --- My progress ---------------------------------------------------------------------------------


def estimate(student, skill, probability: float, days_ago: float, **fields) -> MasteryEstimate:
    return MasteryEstimate.objects.create(
        student=student,
        skill=skill,
        probability=probability,
        as_of=timezone.now() - timedelta(days=days_ago),
        is_current=False,
        **fields,
    )


def test_my_progress_shows_mastery_trend_chart_and_evidence(client, portal):
    # given alice's Adding estimates rising from 40% to 70% over 20 days (model v3 now), and
    # bob's estimates beside hers
    adding = portal["adding"]
    version = ModelVersionFactory(course=portal["algebra"], version=3)
    estimate(portal["alice"], adding, 0.4, 20)
    estimate(portal["alice"], adding, 0.55, 15)
    current = estimate(portal["alice"], adding, 0.7, 1, evidence_count=6, model_version=version)
    MasteryEstimate.objects.filter(pk=current.pk).update(is_current=True)
    estimate(portal["bob"], adding, 0.99, 1)
    # and her quiz, handed in: its rule grades count as evidence
    hand_in(portal, portal["alice"])
    client.force_login(portal["alice"])

    page = client.get(page_url("my_progress", portal["algebra"]))

    assert page.status_code == 200
    rows = {row["skill"].skill_name: row for row in page.context["rows"]}
    assert (rows["Adding"]["skill"].probability, rows["Adding"]["change_points"]) == (0.7, 15)
    assert rows["Counting"]["skill"].probability is None
    content = page.content.decode()
    assert '<span class="mastery-value">70%</span>' in content
    assert "up 15 percentage points" in content
    assert "<td>6</td>" in content
    assert "<td>model v3 (dkt)</td>" in content
    assert "<td>no estimate yet</td>" in content
    chart = page.context["chart"]
    assert [(series.name, [p.y_text for p in series.points]) for series in chart.series] == [
        ("Adding", ["40%", "55%", "70%"])
    ]
    assert "99%" not in content
    assert sorted((e.item_title, e.correct, e.skills) for e in page.context["evidence"]) == [
        ("Capital", True, []),
        ("Primes", True, []),
        ("Six sevens", True, ["Adding"]),
        ("Sky colour", True, []),
    ]
    assert '<th scope="row">Six sevens</th>' in content


def test_evidence_hides_answers_whose_grade_is_held(client, portal):
    now = timezone.now()
    held = AssessmentFactory(
        course=portal["algebra"],
        items=[portal["items"]["sum"]],
        opens_at=now - timedelta(days=1),
        due_at=now + timedelta(days=1),
        hold_grades_until_due=True,
    )
    hand_in(portal, portal["alice"], {"sum": "41"}, assessment=held)
    Interaction.objects.create(
        course=portal["algebra"],
        student=portal["alice"],
        correct=True,
        timestamp=now,
        source=Interaction.Source.IMPORT,
        skill_ids=[portal["counting"].pk],
    )
    client.force_login(portal["alice"])

    page = client.get(page_url("my_progress", portal["algebra"]))

    assert Interaction.objects.filter(student=portal["alice"]).count() == 2
    assert [(e.item_title, e.skills, e.source_label) for e in page.context["evidence"]] == [
        ("", ["Counting"], "Import")
    ]


def test_the_mastery_history_keeps_the_newest_points_of_each_skill_in_one_query(portal):
    for days_ago in range(5, 0, -1):
        estimate(portal["alice"], portal["adding"], days_ago / 10, days_ago)
    estimate(portal["alice"], portal["counting"], 0.9, 1)
    estimate(portal["bob"], portal["adding"], 0.1, 1)

    with CaptureQueriesContext(connection) as queries:
        history = mastery_history(
            student=portal["alice"], course=portal["algebra"], points_per_skill=3
        )

    assert len(queries.captured_queries) == 2  # the role check and the history
    assert {skill: [p for _, p in points] for skill, points in history.items()} == {
        portal["adding"].pk: [0.3, 0.2, 0.1],
        portal["counting"].pk: [0.9],
    }


def test_my_progress_costs_the_same_queries_for_a_bigger_class(client, portal):
    estimate(portal["alice"], portal["adding"], 0.4, 3)
    hand_in(portal, portal["alice"])
    client.force_login(portal["alice"])
    url = page_url("my_progress", portal["algebra"])
    add_classmates(portal, 2)
    small = query_count(client, url)

    add_classmates(portal, 20, start=2)

    assert query_count(client, url) == small


# --- What to study next --------------------------------------------------------------------------


@pytest.fixture
def suggestions(portal):
    """Alice's current suggestions (a video, then a practice question), an earlier one of
    hers, and bob's."""
    video = ResourceFactory(
        course=portal["algebra"], title="Adding <video>", kind="video", url="https://v.example/1"
    )
    made = {
        "video": Recommendation.objects.create(
            student=portal["alice"],
            course=portal["algebra"],
            resource=video,
            skill=portal["adding"],
            rank=1,
            score=0.9,
            reason="stored reason",
            facts={"mastery": 0.4, "target_mastery": 0.8},
        ),
        "practice": Recommendation.objects.create(
            student=portal["alice"],
            course=portal["algebra"],
            item=portal["items"]["sum"],
            skill=portal["adding"],
            rank=2,
            score=0.5,
            reason="stored reason",
            facts={"starting": True},
        ),
        "old": Recommendation.objects.create(
            student=portal["alice"],
            course=portal["algebra"],
            resource=video,
            rank=1,
            score=0.1,
            reason="old",
            is_current=False,
        ),
        "bobs": Recommendation.objects.create(
            student=portal["bob"],
            course=portal["algebra"],
            item=portal["items"]["capital"],
            rank=1,
            score=0.5,
            reason="bob's",
        ),
    }
    return {**portal, "suggested": made}


def feedback_url(data, name: str) -> str:
    return page_url(
        "recommendation_feedback",
        data["algebra"],
        recommendation_id=data["suggested"][name].pk,
    )


def feedback_state(data) -> tuple:
    return (
        list(
            Recommendation.objects.order_by("pk").values_list(
                "viewed_at", "completed_at", "feedback"
            )
        ),
        ResourceInteraction.objects.count(),
    )


def test_my_suggestions_list_my_current_ones_with_reasons_and_buttons(client, suggestions):
    client.force_login(suggestions["alice"])

    page = client.get(page_url("my_suggestions", suggestions["algebra"]))

    assert page.status_code == 200
    assert [row["recommendation"] for row in page.context["rows"]] == [
        suggestions["suggested"]["video"],
        suggestions["suggested"]["practice"],
    ]
    assert [row["reason"] for row in page.context["rows"]] == [
        "Adding is at 40%, below the 80% that counts as mastered.",
        "Adding is a starting skill of this course: a good place to begin.",
    ]
    content = page.content.decode()
    assert '<a href="https://v.example/1">Adding &lt;video&gt;</a>' in content
    url = feedback_url(suggestions, "video")
    assert (
        f'<form method="post" action="{url}" hx-post="{url}" '
        f'hx-target="#suggestion-{suggestions["suggested"]["video"].pk}" hx-swap="outerHTML"'
        in content
    )
    for value, label in [
        ("viewed", "Viewed"),
        ("completed", "Completed"),
        ("helpful", "Helpful"),
        ("not_helpful", "Not helpful"),
    ]:
        assert f'<button type="submit" name="event" value="{value}"' in content
        assert f">{label}</button>" in content
    assert "Capital" not in content  # bob's suggestion


def test_feedback_without_javascript_records_it_and_redirects(client, suggestions):
    client.force_login(suggestions["alice"])

    page = client.post(feedback_url(suggestions, "video"), {"event": "helpful"}, follow=True)

    assert page.redirect_chain == [(page_url("my_suggestions", suggestions["algebra"]), 302)]
    assert [str(message) for message in page.context["messages"]] == [
        "Thank you: you found it helpful."
    ]
    video = Recommendation.objects.get(pk=suggestions["suggested"]["video"].pk)
    assert video.feedback == "helpful"
    assert list(ResourceInteraction.objects.values_list("event", "recommendation_id")) == [
        ("helpful", video.pk)
    ]
    assert "You found it helpful." in page.content.decode()


def test_feedback_with_htmx_swaps_the_row_with_a_confirmation(client, suggestions, sent):
    client.force_login(suggestions["alice"])
    practice = suggestions["suggested"]["practice"]

    page = client.post(
        feedback_url(suggestions, "practice"), {"event": "viewed"}, HTTP_HX_REQUEST="true"
    )

    assert page.status_code == 200
    content = page.content.decode()
    assert content.startswith(f'<li class="suggestion" id="suggestion-{practice.pk}">')
    assert '<p class="confirmation" role="status">Marked as viewed.</p>' in content
    assert "Viewed on " in content
    assert "<html" not in content
    assert Recommendation.objects.get(pk=practice.pk).viewed_at is not None


def test_completing_a_suggestion_asks_for_a_new_one(
    client, suggestions, sent, django_capture_on_commit_callbacks
):
    client.force_login(suggestions["alice"])

    with django_capture_on_commit_callbacks(execute=True):
        client.post(feedback_url(suggestions, "video"), {"event": "completed"})

    video = Recommendation.objects.get(pk=suggestions["suggested"]["video"].pk)
    assert video.completed_at is not None
    assert sent == [
        (
            "edu_dl.recommending.refresh_student",
            [suggestions["alice"].pk, suggestions["algebra"].pk],
        )
    ]


def test_feedback_on_someone_elses_suggestion_is_not_found_and_changes_nothing(client, suggestions):
    before = feedback_state(suggestions)
    client.force_login(suggestions["alice"])

    page = client.post(feedback_url(suggestions, "bobs"), {"event": "helpful"})

    assert page.status_code == 404
    assert feedback_state(suggestions) == before


def test_an_unknown_feedback_event_is_refused_with_its_reason(client, suggestions):
    before = feedback_state(suggestions)
    client.force_login(suggestions["alice"])

    page = client.post(feedback_url(suggestions, "video"), {"event": "loved"})

    assert page.status_code == 400
    assert (
        '<p class="form-errors" role="alert">event must be one of viewed, completed, helpful, '
        "not_helpful, not &#x27;loved&#x27;</p>" in page.content.decode()
    )
    assert feedback_state(suggestions) == before


@pytest.mark.parametrize(
    ("person", "status"), [("teacher", 403), ("bio_student", 404), ("stranger", 404)]
)
def test_others_cannot_give_feedback(client, suggestions, person, status):
    before = feedback_state(suggestions)
    client.force_login(suggestions[person])

    page = client.post(feedback_url(suggestions, "video"), {"event": "helpful"})

    assert page.status_code == status
    assert feedback_state(suggestions) == before


def test_feedback_cannot_be_given_with_get(client, suggestions):
    client.force_login(suggestions["alice"])

    assert client.get(feedback_url(suggestions, "video")).status_code == 405


def test_my_suggestions_cost_the_same_queries_for_a_bigger_class(client, suggestions):
    client.force_login(suggestions["alice"])
    url = page_url("my_suggestions", suggestions["algebra"])
    add_classmates(suggestions, 2)
    small = query_count(client, url)

    add_classmates(suggestions, 20, start=2)

    assert query_count(client, url) == small
