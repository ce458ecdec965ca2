"""The review pages of course staff, and a student's page of their own submission."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from edu_dl.models import AuditEvent, Response, ResponseGrade
from edu_dl.services.review import response_accept, response_override
from edu_dl.services.submissions import submission_create
from tests.factories import AssessmentFactory, EnrollmentFactory, ItemFactory, UserFactory
from tests.review_data import (
    SUBMITTED,
    model_suggests,
    patch_grader_retraining,
    response_of,
    review_course,
)

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda *args, **kwargs: None)


@pytest.fixture(autouse=True)
def retrain_checks(monkeypatch):
    return patch_grader_retraining(monkeypatch)


@pytest.fixture
def data():
    return review_course()


def queue_url(data, **query) -> str:
    url = reverse("edu_dl:review_queue", kwargs={"slug": data["course"].slug})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def detail_url(data, response: Response, **query) -> str:
    url = reverse(
        "edu_dl:review_detail", kwargs={"slug": data["course"].slug, "response_id": response.pk}
    )
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def accept_url(data, response: Response) -> str:
    return reverse(
        "edu_dl:review_accept", kwargs={"slug": data["course"].slug, "response_id": response.pk}
    )


def override_url(data, response: Response) -> str:
    return reverse(
        "edu_dl:review_override", kwargs={"slug": data["course"].slug, "response_id": response.pk}
    )


def submission_url(data, submission) -> str:
    return reverse(
        "edu_dl:submission_detail",
        kwargs={"slug": data["course"].slug, "submission_id": submission.pk},
    )


def answers_from(data, names: list[str]) -> dict[str, Response]:
    """More students' short answers ("Answer of <name>"), pending."""
    responses = {}
    for name in names:
        student = EnrollmentFactory(course=data["course"], user=UserFactory(username=name)).user
        submission = submission_create(
            student=student,
            assessment=data["quiz"],
            answers={data["why"].pk: f"Answer of {name}"},
            now=SUBMITTED,
        )
        responses[name] = submission.responses.get(item=data["why"])
    return responses


def messages_of(page) -> list[str]:
    return [str(message) for message in page.context["messages"]]


def snapshot(response: Response) -> tuple:
    response = Response.objects.get(pk=response.pk)
    return (
        response.status,
        response.score,
        response.grade_source,
        response.released,
        response.feedback,
        list(response.grades.values_list("pk", flat=True)),
        AuditEvent.objects.count(),
    )


# --- The queue -----------------------------------------------------------------------------------


def test_the_queue_lists_waiting_answers_by_priority_with_what_a_teacher_needs(client, data):
    # given three answers in review with different priorities
    model_suggests(response_of(data, "alice"), score=3, confidence=0.6, priority=0.2)
    model_suggests(response_of(data, "bob"), score=1, confidence=0.42, priority=0.9)
    model_suggests(
        response_of(data, "bob", item="choice"),
        score=None,
        priority=None,
        reason="empty answer",
    )
    client.force_login(data["teacher"])

    # when
    page = client.get(queue_url(data))

    # then bob's comes first, alice's second, the one without a priority last
    assert page.status_code == 200
    assert [
        (r.submission.student.username, r.item.title) for r in page.context["page"].object_list
    ] == [("bob", "Why blue"), ("alice", "Why blue"), ("bob", "Sky colour")]
    content = page.content.decode()
    assert content.index("Because the sea reflects.") < content.index(
        "Rayleigh scattering of sunlight."
    )
    # with the student, the item, the answer, the suggestion, the confidence and the reason
    assert (
        "<td>Alice</td>\n  <td>Why blue</td>\n"
        '  <td class="answer">Rayleigh scattering of sunlight.</td>\n'
        "  <td>3 of 4</td>\n  <td>60%</td>\n  <td>low confidence</td>"
    ) in content
    assert "<td>42%</td>" in content
    assert "<td>empty answer</td>" in content
    assert '<td class="answer">Green</td>' in content  # bob's choice "b", by its option text
    assert '<p class="lead">3 answers wait for you.</p>' in content


def test_an_answer_a_regex_key_timed_out_on_waits_in_the_queue_with_the_reason(client, data):
    # given a regex item whose key backtracks for ever on a long run of "a"s, and alice's answer
    pattern = ItemFactory(
        course=data["course"],
        exact_text=True,
        text_match="regex",
        answer_key=r"(a|aa)+b",
        title="Pattern",
    )
    drill = AssessmentFactory(course=data["course"], title="Drill", items=[pattern])
    submission = submission_create(
        student=data["alice"], assessment=drill, answers={pattern.pk: "a" * 5000}, now=SUBMITTED
    )
    response = submission.responses.get()
    client.force_login(data["teacher"])

    # when the teacher opens the queue and the answer's page
    queue = client.get(queue_url(data, item=pattern.pk)).content.decode()
    review = client.get(detail_url(data, response)).content.decode()

    # then both say why it waits
    reason = (
        "the answer took too long to check against the answer key&#x27;s regular expression; "
        "grade it by hand (a simpler pattern avoids this)"
    )
    assert f"<td>{reason}</td>" in queue
    assert f"<dd>{reason}</dd>" in review


def test_the_queue_can_be_filtered_by_item_and_pages_keep_the_filter(client, data):
    # given 27 answers to "Why blue" and one to the choice item in review
    for response in answers_from(data, [f"student{n:02d}" for n in range(27)]).values():
        model_suggests(response, score=2)
    model_suggests(response_of(data, "bob", item="choice"), score=0)
    client.force_login(data["teacher"])

    # when the teacher shows "Why blue" only
    first = client.get(queue_url(data, item=data["why"].pk))
    second = client.get(queue_url(data, item=data["why"].pk, page=2))

    # then 25 a page, the second page has the last two, and the links keep the item
    assert first.context["item"] == data["why"]
    assert len(first.context["page"]) == 25
    assert {r.item_id for r in first.context["page"]} == {data["why"].pk}
    assert len(second.context["page"]) == 2
    assert f'href="?item={data["why"].pk}&amp;page=2#queue-heading"' in first.content.decode()
    assert [(c.item_label, c.waiting) for c in first.context["counts"]] == [
        ("Sky colour", 1),
        ("Why blue", 27),
    ]


def test_the_queue_query_count_does_not_grow_with_the_queue(client, data):
    # given two answers in review
    model_suggests(response_of(data, "alice"), score=3)
    model_suggests(response_of(data, "bob"), score=1)
    client.force_login(data["teacher"])
    with CaptureQueriesContext(connection) as short_queue:
        short = client.get(queue_url(data))
    # when ten more wait
    for response in answers_from(data, [f"student{n:02d}" for n in range(10)]).values():
        model_suggests(response, score=2)
    with CaptureQueriesContext(connection) as long_queue:
        long = client.get(queue_url(data))
    # then the page lists them all with the same number of queries
    assert (len(short.context["page"]), len(long.context["page"])) == (2, 12)
    assert len(long_queue.captured_queries) == len(short_queue.captured_queries)


def test_an_unknown_item_filter_shows_the_whole_queue(client, data):
    model_suggests(response_of(data, "alice"), score=3)
    client.force_login(data["teacher"])

    page = client.get(queue_url(data, item="nonsense"))

    assert page.status_code == 200
    assert page.context["item"] is None
    assert len(page.context["page"]) == 1


def test_the_queue_escapes_answers(client, data):
    response = response_of(data, "alice")
    Response.objects.filter(pk=response.pk).update(answer=SCRIPT)
    model_suggests(Response.objects.get(pk=response.pk), score=1)
    client.force_login(data["teacher"])

    content = client.get(queue_url(data)).content.decode()

    assert SCRIPT not in content
    assert ESCAPED_SCRIPT in content


def test_the_course_page_links_the_review_queue_for_staff_only(client, data):
    model_suggests(response_of(data, "alice"), score=3)
    model_suggests(response_of(data, "bob"), score=1)
    course_url = reverse("edu_dl:course_detail", kwargs={"slug": data["course"].slug})

    client.force_login(data["assistant"])
    for_staff = client.get(course_url).content.decode()
    client.force_login(data["alice"])
    for_student = client.get(course_url).content.decode()

    # (the wording of the overview's link is the overview's: tests/web/test_overview*.py)
    assert f'<a href="{queue_url(data)}"' in for_staff
    assert queue_url(data) not in for_student


@pytest.mark.parametrize(("person", "status"), [("alice", 403), ("other_teacher", 404)])
def test_students_and_outsiders_cannot_open_the_queue_or_a_review(client, data, person, status):
    response = model_suggests(response_of(data, "alice"), score=3)
    client.force_login(data[person])

    assert client.get(queue_url(data)).status_code == status
    assert client.get(detail_url(data, response)).status_code == status


def test_anonymous_visitors_are_sent_to_login(client, data):
    url = queue_url(data)

    page = client.get(url)

    assert page.status_code == 302
    assert page["Location"] == f"{reverse('login')}?next={url}"


# --- One response --------------------------------------------------------------------------------


def test_the_review_page_escapes_the_answer_and_everything_the_model_repeats(client, data):
    # given an answer that is a script, explained by a phrase of it and by a similar answer
    # (graded by a teacher) that is a script too
    similar = response_of(data, "bob")
    Response.objects.filter(pk=similar.pk).update(answer=f"{SCRIPT} similar")
    response_override(response=similar, actor=data["teacher"], score=1)
    response = response_of(data, "alice")
    Response.objects.filter(pk=response.pk).update(answer=SCRIPT)
    model_suggests(
        Response.objects.get(pk=response.pk),
        score=2,
        confidence=0.55,
        reason=f"{SCRIPT} reason",
        explanation={
            "phrases": [{"text": SCRIPT, "weight": 0.75}, {"text": "alert", "weight": -0.2}],
            "similar": [{"key": similar.pk, "score": 1, "similarity": 0.93}],
        },
    )
    client.force_login(data["teacher"])

    # when
    page = client.get(detail_url(data, response))

    # then no script gets through, and every part is shown escaped
    content = page.content.decode()
    assert page.status_code == 200
    assert SCRIPT not in content
    assert f'<blockquote class="answer">{ESCAPED_SCRIPT}</blockquote>' in content
    assert f"<tr><td>{ESCAPED_SCRIPT}</td><td>+0.75</td></tr>" in content
    assert "<tr><td>alert</td><td>-0.2</td></tr>" in content
    assert f'<td class="answer">{ESCAPED_SCRIPT} similar</td>\n        <td>1</td>' in content
    assert "<td>93%</td>" in content
    assert f"<dd>{ESCAPED_SCRIPT} reason</dd>" in content
    assert "The model suggests 2 of 4." in content
    assert "Confidence: 55%." in content


def test_the_review_page_shows_the_history_and_both_forms(client, data):
    response = model_suggests(response_of(data, "alice"), score=3)
    client.force_login(data["teacher"])

    page = client.get(detail_url(data, response))

    content = page.content.decode()
    assert [g.action for g in page.context["review"].history] == ["model"]
    assert "Graded by a model" in content
    assert f'action="{accept_url(data, response)}"' in content
    assert f'action="{override_url(data, response)}"' in content
    # accept and override, beside the sign-out and language forms of every page
    assert content.count('name="csrfmiddlewaretoken"') == 4
    assert 'step="any" min="0" max="4"' in content
    assert 'aria-describedby="id_score_helptext" id="id_score"' in content
    assert '<span class="detail" id="id_score_helptext">From 0 to 4.</span>' in content
    assert ">Accept 3</button>" in content


def test_accepting_redirects_to_the_next_answer_with_a_message(client, data):
    # given two answers in review, alice's first
    alice = model_suggests(response_of(data, "alice"), score=3, priority=0.9)
    bob = model_suggests(response_of(data, "bob"), score=1, priority=0.1)
    client.force_login(data["teacher"])

    # when the teacher accepts alice's
    page = client.post(accept_url(data, alice), follow=True)

    # then it is the teacher's released grade, and bob's answer is shown next
    alice.refresh_from_db()
    assert (alice.status, alice.score, alice.grade_source, alice.released) == (
        "graded",
        3.0,
        "teacher",
        True,
    )
    assert alice.reviewed_by == data["teacher"]
    assert page.redirect_chain == [(detail_url(data, bob), 302)]
    assert messages_of(page) == ["Saved 3 of 4 for alice's answer to Why blue."]


def test_the_last_answer_reviewed_leads_back_to_the_queue(client, data):
    response = model_suggests(response_of(data, "alice"), score=3)
    client.force_login(data["teacher"])

    page = client.post(accept_url(data, response), {"item": data["why"].pk}, follow=True)

    assert page.redirect_chain == [(queue_url(data, item=data["why"].pk), 302)]
    assert "Nothing waits for review." in page.content.decode()


def test_the_next_answer_keeps_the_item_filter_while_the_item_has_some(client, data):
    first = model_suggests(response_of(data, "alice"), score=3, priority=0.5)
    model_suggests(response_of(data, "bob", item="choice"), score=0, priority=0.9)
    following = model_suggests(response_of(data, "bob"), score=1, priority=0.1)
    client.force_login(data["teacher"])

    page = client.post(accept_url(data, first), {"item": data["why"].pk})

    assert page["Location"] == detail_url(data, following, item=data["why"].pk)


def test_accepting_without_a_suggestion_shows_why_and_changes_nothing(client, data):
    response = model_suggests(response_of(data, "alice"), score=None, reason="empty answer")
    unchanged = snapshot(response)
    client.force_login(data["teacher"])

    page = client.post(accept_url(data, response), follow=True)

    assert page.redirect_chain == [(detail_url(data, response), 302)]
    assert messages_of(page) == [
        f"Not accepted: response {response.pk} has no suggested score to accept "
        "(empty answer); give it a score with override"
    ]
    assert snapshot(response) == unchanged


def test_overriding_saves_the_teachers_score_and_feedback(client, data):
    response = model_suggests(response_of(data, "alice"), score=3)
    client.force_login(data["assistant"])

    page = client.post(
        override_url(data, response), {"score": "1.5", "feedback": "Say why it scatters."}
    )

    response.refresh_from_db()
    assert page.status_code == 302
    assert page["Location"] == queue_url(data)
    assert (response.score, response.grade_source, response.feedback, response.reviewed_by) == (
        1.5,
        "teacher",
        "Say why it scatters.",
        data["assistant"],
    )
    assert list(response.grades.order_by("pk").values_list("action", "score")) == [
        ("model", 3.0),
        ("override", 1.5),
    ]


@pytest.mark.parametrize(
    ("score", "error"),
    [
        ("5", "score 5 is outside the scale of item &#x27;Why blue&#x27;: 0 to 4"),
        ("-1", "score -1 is outside the scale of item &#x27;Why blue&#x27;: 0 to 4"),
        ("three", "Enter a number."),
        ("nan", "Enter a number."),
        ("", "This field is required."),
    ],
)
def test_a_refused_score_shows_the_page_again_and_changes_nothing(client, data, score, error):
    response = model_suggests(response_of(data, "alice"), score=3)
    unchanged = snapshot(response)
    client.force_login(data["teacher"])

    page = client.post(override_url(data, response), {"score": score, "feedback": "x"})

    assert page.status_code == 400
    assert f'<span class="field-error" role="alert">{error}</span>' in page.content.decode()
    assert snapshot(response) == unchanged


@pytest.mark.parametrize(("person", "status"), [("alice", 403), ("other_teacher", 404)])
def test_students_and_outsiders_cannot_grade(client, data, person, status):
    response = model_suggests(response_of(data, "alice"), score=3)
    unchanged = snapshot(response)
    client.force_login(data[person])

    accepted = client.post(accept_url(data, response))
    overridden = client.post(override_url(data, response), {"score": "0"})

    assert (accepted.status_code, overridden.status_code) == (status, status)
    assert snapshot(response) == unchanged


def test_a_response_of_another_course_is_not_found_under_this_one(client, data):
    other = review_course(slug="history", prefix="h-")
    theirs = model_suggests(response_of(other, "alice"), score=3)
    client.force_login(data["teacher"])

    assert client.get(detail_url(data, theirs)).status_code == 404
    assert client.post(accept_url(data, theirs)).status_code == 404
    assert Response.objects.get(pk=theirs.pk).status == "needs_review"


def test_grading_needs_a_csrf_token(data):
    response = model_suggests(response_of(data, "alice"), score=3)
    unchanged = snapshot(response)
    client = Client(enforce_csrf_checks=True)
    client.force_login(data["teacher"])

    page = client.post(accept_url(data, response))

    assert page.status_code == 403
    assert snapshot(response) == unchanged


def test_grading_cannot_be_done_with_get(client, data):
    response = model_suggests(response_of(data, "alice"), score=3)
    client.force_login(data["teacher"])

    assert client.get(accept_url(data, response)).status_code == 405
    assert client.get(override_url(data, response)).status_code == 405


# --- Accept all shown ----------------------------------------------------------------------------


def test_accept_all_shown_accepts_the_answers_of_the_page(client, data):
    alice = model_suggests(response_of(data, "alice"), score=3)
    bob = model_suggests(response_of(data, "bob"), score=1)
    empty = model_suggests(response_of(data, "bob", item="choice"), score=None)
    client.force_login(data["teacher"])
    shown = client.get(queue_url(data))
    assert shown.context["acceptable_ids"] == [alice.pk, bob.pk]

    page = client.post(
        reverse("edu_dl:review_accept_many", kwargs={"slug": data["course"].slug}),
        {"response_ids": [alice.pk, bob.pk]},
        follow=True,
    )

    assert page.redirect_chain == [(queue_url(data), 302)]
    assert messages_of(page) == ["Accepted the suggested scores of 2 answers."]
    assert dict(
        Response.objects.filter(pk__in=[alice.pk, bob.pk, empty.pk]).values_list("pk", "status")
    ) == {alice.pk: "graded", bob.pk: "graded", empty.pk: "needs_review"}
    assert ResponseGrade.objects.filter(action="accept").count() == 2


# --- A student's submission ----------------------------------------------------------------------


def test_a_student_sees_released_scores_on_their_submission_but_not_the_suggestion(client, data):
    # given alice's choice answer graded by rule and her short answer in review at 3 (60%)
    model_suggests(response_of(data, "alice"), score=3, confidence=0.6, reason="low confidence")
    client.force_login(data["alice"])
    url = submission_url(data, data["submissions"]["alice"])

    # when she opens her submission
    waiting = client.get(url)

    # then she sees her rule grade, and that the short answer waits, without its suggestion
    assert waiting.status_code == 200
    assert [(v.item_title, v.score) for v in waiting.context["responses"]] == [
        ("Sky colour", 1.0),
        ("Why blue", None),
    ]
    content = waiting.content.decode()
    assert "<td>1 of 1</td>" in content
    assert "<td>Waiting for the teacher</td>" in content
    for hidden in ("3 of 4", "60%", "low confidence", "Accept"):
        assert hidden not in content, hidden

    # and once the teacher accepts it, she sees it
    response_accept(
        response=response_of(data, "alice"), actor=data["teacher"], feedback="<b>Good</b>"
    )
    graded = client.get(url).content.decode()
    assert "<td>3 of 4</td>" in graded
    assert "<td>&lt;b&gt;Good&lt;/b&gt;</td>" in graded


def test_an_unreleased_grade_is_not_shown_to_the_student(client, data):
    response = response_of(data, "alice")
    Response.objects.filter(pk=response.pk).update(
        status="graded", score=2, grade_source="model", released=False
    )
    client.force_login(data["alice"])

    content = client.get(submission_url(data, data["submissions"]["alice"])).content.decode()

    assert "<td>Not released yet</td>" in content
    assert "2 of 4" not in content


@pytest.mark.parametrize("person", ["bob", "other_student", "other_teacher", "stranger"])
def test_someone_elses_submission_is_not_found(client, data, person):
    client.force_login(data[person])

    page = client.get(submission_url(data, data["submissions"]["alice"]))

    assert page.status_code == 404


def test_the_student_course_page_links_their_submission(client, data):
    client.force_login(data["alice"])

    page = client.get(reverse("edu_dl:course_detail", kwargs={"slug": data["course"].slug}))

    url = submission_url(data, data["submissions"]["alice"])
    assert f'<a href="{url}">Submitted, being graded</a>' in page.content.decode()


def test_a_student_sees_their_choices_by_option_text_escaped_or_by_id_once_removed(client, data):
    # given alice's single and multiple choice answers, with option texts that are markup,
    # and one option she chose removed from the item since
    single = ItemFactory(
        course=data["course"],
        single_choice=True,
        title="Colour",
        options=[{"id": "a", "text": "<b>Blue</b>"}, {"id": "b", "text": "Green"}],
    )
    multiple = ItemFactory(
        course=data["course"],
        multiple_choice=True,
        title="Primes",
        options=[
            {"id": "a", "text": "2 & 3"},
            {"id": "b", "text": "4"},
            {"id": "c", "text": "5"},
            {"id": "d", "text": "<i>7</i>"},
        ],
    )
    quiz = AssessmentFactory(
        course=data["course"], items=[single, multiple], opens_at=SUBMITTED, due_at=None
    )
    submission = submission_create(
        student=data["alice"],
        assessment=quiz,
        answers={single.pk: "a", multiple.pk: ["a", "c", "d"]},
        now=SUBMITTED,
    )
    multiple.options = [option for option in multiple.options if option["id"] != "c"]
    multiple.save(update_fields=["options"])
    client.force_login(data["alice"])

    # when she opens her submission
    content = client.get(submission_url(data, submission)).content.decode()

    # then each answer shows the chosen options' texts, escaped, and the removed one by its id
    assert '<td class="answer">&lt;b&gt;Blue&lt;/b&gt;</td>' in content
    assert '<td class="answer">2 &amp; 3, c, &lt;i&gt;7&lt;/i&gt;</td>' in content


# --- Grading from the queue (htmx), and without JavaScript --------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}


def model_releases(response: Response, *, score: float, confidence: float = 0.95) -> Response:
    """Grade ``response`` by the model and release it on its own, no teacher involved: what the
    model grader writes for a confident, validated grade."""
    Response.objects.filter(pk=response.pk).update(
        status="graded", score=score, grade_source="model", confidence=confidence, released=True
    )
    ResponseGrade.objects.create(
        response=response,
        score=score,
        grade_source="model",
        confidence=confidence,
        action="model",
        released=True,
    )
    return Response.objects.get(pk=response.pk)


def test_accepting_inline_with_htmx_answers_the_row_and_the_counts(client, data):
    # given two answers in review
    alice = model_suggests(response_of(data, "alice"), score=3, confidence=0.6, priority=0.9)
    model_suggests(response_of(data, "bob"), score=1, priority=0.1)
    audited = AuditEvent.objects.count()
    client.force_login(data["teacher"])

    # when the teacher accepts alice's from the queue, with htmx
    page = client.post(accept_url(data, alice), {"back": "queue", "page": "1"}, **HTMX)

    # then the answer is the row, done, and out of band what remains: no redirect
    assert page.status_code == 200
    assert page.templates[0].name == "edu_dl/review/row_answer.html"
    content = page.content.decode()
    assert content.startswith(
        f'\n<tr id="review-row-{alice.pk}" class="review-row review-row-accepted"'
    )
    assert "<td>3 of 4</td>" in content
    assert "Done: suggestion accepted and released" in content
    assert f'action="{accept_url(data, alice)}"' not in content
    assert (
        '<div id="review-remaining" class="review-remaining" aria-live="polite" '
        'hx-swap-oob="innerHTML">\n  <p class="lead">1 answer waits for you.</p>\n'
        "  <p>The models graded 0 of the 1 model-graded answer released in this course on "
        "their own (0%).</p>"
    ) in content
    assert '<section id="review-waiting-per-item" aria-labelledby="waiting-heading" ' in content
    assert 'hx-swap-oob="true">' in content
    # and the grade is the teacher's, released, in the history and the audit
    alice.refresh_from_db()
    assert (alice.status, alice.score, alice.grade_source, alice.released, alice.reviewed_by) == (
        "graded",
        3.0,
        "teacher",
        True,
        data["teacher"],
    )
    assert list(alice.grades.order_by("pk").values_list("action", flat=True)) == [
        "model",
        "accept",
    ]
    assert AuditEvent.objects.count() == audited + 1
    assert messages_of(client.get(queue_url(data))) == []  # no message left for a later page


def test_accepting_inline_without_a_suggestion_answers_the_row_with_why(client, data):
    response = model_suggests(response_of(data, "alice"), score=None, reason="empty answer")
    unchanged = snapshot(response)
    client.force_login(data["teacher"])

    page = client.post(accept_url(data, response), {"back": "queue"}, **HTMX)

    content = page.content.decode()
    assert page.status_code == 200
    assert 'class="review-row review-row-waiting"' in content
    assert (
        f'<p class="field-error" role="alert" id="review-error-{response.pk}-1">Not accepted: '
        f"response {response.pk} has no suggested score to accept (empty answer); give it a "
        "score with override</p>"
    ) in content
    assert snapshot(response) == unchanged


def test_scoring_inline_with_htmx_saves_the_score(client, data):
    response = model_suggests(response_of(data, "alice"), score=3)
    client.force_login(data["assistant"])

    page = client.post(override_url(data, response), {"score": "2.5", "back": "queue"}, **HTMX)

    response.refresh_from_db()
    assert page.status_code == 200
    content = page.content.decode()
    assert "<td>2.50 of 4</td>" in content
    assert "Done: your score saved and released" in content
    assert '<p class="lead">0 answers wait for you.</p>' in content
    assert (response.score, response.grade_source, response.reviewed_by) == (
        2.5,
        "teacher",
        data["assistant"],
    )


@pytest.mark.parametrize(
    ("score", "error"),
    [
        ("5", "score 5 is outside the scale of item &#x27;Why blue&#x27;: 0 to 4"),
        ("three", "Enter a number."),
        ("", "This field is required."),
    ],
)
def test_a_refused_inline_score_answers_the_row_with_the_error_and_changes_nothing(
    client, data, score, error
):
    response = model_suggests(response_of(data, "alice"), score=3)
    unchanged = snapshot(response)
    client.force_login(data["teacher"])

    page = client.post(override_url(data, response), {"score": score, "back": "queue"}, **HTMX)

    content = page.content.decode()
    assert page.status_code == 200
    assert (
        f'<p class="field-error" role="alert" id="review-error-{response.pk}-1">{error}</p>'
    ) in content
    assert (
        f'value="{score}" step="any" min="0" max="4" required class="review-score" '
        f'data-shortcut="score" aria-invalid="true" '
        f'aria-describedby="review-error-{response.pk}-1">'
    ) in content
    assert snapshot(response) == unchanged


def test_without_javascript_grading_from_the_queue_goes_back_to_the_same_queue_page(client, data):
    # given 27 answers to "Why blue" in review
    waiting = list(answers_from(data, [f"student{n:02d}" for n in range(27)]).values())
    for response in waiting:
        model_suggests(response, score=2)
    client.force_login(data["teacher"])
    item = data["why"].pk

    # when the teacher accepts one and scores another on page 2 of the item's queue
    accepted = client.post(
        accept_url(data, waiting[0]), {"back": "queue", "item": item, "page": "2"}
    )
    scored = client.post(
        override_url(data, waiting[1]),
        {"score": "1", "back": "queue", "item": item, "page": "2"},
        follow=True,
    )

    # then both go back to that page with a message, not to the next answer's page
    assert accepted["Location"] == queue_url(data, item=item, page=2)
    assert scored.redirect_chain == [(queue_url(data, item=item, page=2), 302)]
    assert messages_of(scored) == [
        "Saved 2 of 4 for student00's answer to Why blue.",
        "Saved 1 of 4 for student01's answer to Why blue.",
    ]
    assert (
        Response.objects.filter(pk__in=[waiting[0].pk, waiting[1].pk], status="graded").count() == 2
    )


def test_the_queue_rows_carry_forms_that_work_with_and_without_htmx(client, data):
    response = model_suggests(response_of(data, "alice"), score=3)
    empty = model_suggests(response_of(data, "bob"), score=None, reason="empty answer")
    client.force_login(data["teacher"])

    content = client.get(queue_url(data, item=data["why"].pk)).content.decode()

    accept = accept_url(data, response)
    assert (
        f'<form method="post" action="{accept}" hx-post="{accept}" '
        f'hx-target="#review-row-{response.pk}" hx-swap="outerHTML"'
    ) in content
    assert (
        '<button type="submit" data-shortcut="accept">Accept 3<span class="visually-hidden"> '
        "for Alice's answer to Why blue</span></button>"
    ) in content
    assert (
        f'<label for="review-score-{response.pk}">Score<span class="visually-hidden"> for '
        "Alice's answer to Why blue, from 0 to 4</span></label>"
    ) in content
    assert f'hx-post="{override_url(data, empty)}"' in content
    assert f'hx-post="{accept_url(data, empty)}"' not in content  # nothing to accept
    assert content.count(f'<input type="hidden" name="item" value="{data["why"].pk}">') == 4


# --- Accept every suggestion above a confidence --------------------------------------------------


def accept_above_url(data) -> str:
    return reverse("edu_dl:review_accept_above", kwargs={"slug": data["course"].slug})


@pytest.fixture
def confidences(data):
    """Answers in review with confidences 0.95, 0.9 and 0.89 (to "Why blue"), 0.97 (to the
    choice item), and one without a suggestion."""
    answers = answers_from(data, ["carol", "dave", "erin"])
    return {
        "high": model_suggests(answers["carol"], score=4, confidence=0.95),
        "edge": model_suggests(answers["dave"], score=2, confidence=0.9),
        "low": model_suggests(answers["erin"], score=1, confidence=0.89),
        "choice": model_suggests(response_of(data, "bob", item="choice"), score=0, confidence=0.97),
        "none": model_suggests(response_of(data, "alice"), score=None, reason="empty answer"),
    }


def statuses(responses: dict[str, Response]) -> dict[str, str]:
    found = dict(
        Response.objects.filter(pk__in=[r.pk for r in responses.values()]).values_list(
            "pk", "status"
        )
    )
    return {name: found[response.pk] for name, response in responses.items()}


def test_accept_above_accepts_exactly_the_suggestions_at_or_above_the_confidence(
    client, data, confidences
):
    client.force_login(data["teacher"])

    page = client.post(accept_above_url(data), {"min_confidence": "90", "item": ""}, follow=True)

    assert page.redirect_chain == [(queue_url(data), 302)]
    assert messages_of(page) == [
        "Accepted the suggested scores of 3 answers with a confidence of at least 90%."
    ]
    assert statuses(confidences) == {
        "high": "graded",
        "edge": "graded",
        "low": "needs_review",
        "choice": "graded",
        "none": "needs_review",
    }
    accepted = [confidences[name].pk for name in ("high", "edge", "choice")]
    assert sorted(
        AuditEvent.objects.filter(action="response.accept").values_list("target_id", flat=True)
    ) == sorted(str(pk) for pk in accepted)
    assert sorted(
        ResponseGrade.objects.filter(action="accept", actor=data["teacher"]).values_list(
            "response_id", flat=True
        )
    ) == sorted(accepted)


def test_accept_above_for_one_item_leaves_the_other_items_alone(client, data, confidences):
    client.force_login(data["teacher"])

    page = client.post(
        accept_above_url(data), {"min_confidence": "89", "item": data["why"].pk}, follow=True
    )

    assert page.redirect_chain == [(queue_url(data, item=data["why"].pk), 302)]
    assert messages_of(page) == [
        "Accepted the suggested scores of 3 answers with a confidence of at least 89%."
    ]
    assert statuses(confidences) == {
        "high": "graded",
        "edge": "graded",
        "low": "graded",
        "choice": "needs_review",
        "none": "needs_review",
    }


def test_accept_above_with_none_that_confident_says_so(client, data, confidences):
    client.force_login(data["teacher"])

    page = client.post(accept_above_url(data), {"min_confidence": "99.5"}, follow=True)

    assert messages_of(page) == ["No waiting suggestion has a confidence of at least 99.5%."]
    assert set(statuses(confidences).values()) == {"needs_review"}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("150", "Ensure this value is less than or equal to 100."),
        ("-1", "Ensure this value is greater than or equal to 0."),
        ("ninety", "Enter a number."),
        ("", "This field is required."),
    ],
)
def test_a_refused_threshold_shows_the_queue_again_and_accepts_nothing(
    client, data, confidences, value, error
):
    audited = AuditEvent.objects.count()
    client.force_login(data["teacher"])

    page = client.post(accept_above_url(data), {"min_confidence": value})

    assert page.status_code == 400
    assert f'<span class="field-error" role="alert">{error}</span>' in page.content.decode()
    assert set(statuses(confidences).values()) == {"needs_review"}
    assert AuditEvent.objects.count() == audited


@pytest.mark.parametrize(
    ("person", "status"),
    [("alice", 403), ("other_teacher", 404), ("other_student", 404), ("stranger", 404)],
)
def test_only_the_course_staff_can_accept_above_a_confidence(
    client, data, confidences, person, status
):
    client.force_login(data[person])

    page = client.post(accept_above_url(data), {"min_confidence": "0"})

    assert page.status_code == status
    assert set(statuses(confidences).values()) == {"needs_review"}


def test_accept_above_sends_anonymous_visitors_to_login_and_refuses_get(client, data, confidences):
    url = accept_above_url(data)

    page = client.post(url, {"min_confidence": "0"})

    assert page.status_code == 302
    assert page["Location"] == f"{reverse('login')}?next={url}"
    client.force_login(data["teacher"])
    assert client.get(url).status_code == 405
    assert set(statuses(confidences).values()) == {"needs_review"}


@pytest.mark.parametrize("person", ["alice", "other_teacher", "stranger"])
def test_inline_grading_with_htmx_is_refused_to_others_and_changes_nothing(client, data, person):
    response = model_suggests(response_of(data, "alice"), score=3)
    unchanged = snapshot(response)
    client.force_login(data[person])

    accepted = client.post(accept_url(data, response), {"back": "queue"}, **HTMX)
    scored = client.post(override_url(data, response), {"score": "1", "back": "queue"}, **HTMX)

    expected = 403 if person == "alice" else 404
    assert (accepted.status_code, scored.status_code) == (expected, expected)
    assert snapshot(response) == unchanged


# --- What remains, and what the models did -------------------------------------------------------


def test_the_queue_says_what_waits_and_how_much_the_models_graded_on_their_own(client, data):
    # given three answers released by the model on its own, one accepted and one overridden by
    # a teacher after the model, one waiting, and the rule-graded choice answers (not counted)
    answers = answers_from(data, ["carol", "dave", "erin"])
    for name in ("carol", "dave", "erin"):
        model_releases(answers[name], score=3)
    response_accept(
        response=model_suggests(response_of(data, "alice"), score=3), actor=data["teacher"]
    )
    response_override(
        response=model_suggests(response_of(data, "bob"), score=1),
        actor=data["teacher"],
        score=2,
    )
    model_suggests(answers_from(data, ["frank"])["frank"], score=2)
    client.force_login(data["teacher"])

    # when
    page = client.get(queue_url(data, item=data["why"].pk))

    # then
    content = page.content.decode()
    assert (
        '<p class="lead">1 answer waits for you (1 of them to Why blue).</p>\n'
        "  <p>The models graded 3 of the 5 model-graded answers released in this course on "
        "their own (60%).</p>"
    ) in content


def test_the_queue_query_count_is_the_same_for_3_and_30_waiting(client, data):
    def waiting(names):
        for response in answers_from(data, names).values():
            model_suggests(response, score=2)

    waiting(["s00", "s01", "s02"])
    client.force_login(data["teacher"])
    with CaptureQueriesContext(connection) as three:
        small = client.get(queue_url(data))
    waiting([f"s{n:02d}" for n in range(3, 30)])
    with CaptureQueriesContext(connection) as thirty:
        big = client.get(queue_url(data))

    assert (small.context["progress"].waiting, big.context["progress"].waiting) == (3, 30)
    assert (len(small.context["page"]), len(big.context["page"])) == (3, 25)
    assert len(thirty.captured_queries) == len(three.captured_queries)


# --- The pages' frame: course tabs, previous / next, keyboard shortcuts --------------------------


def test_the_queue_and_review_pages_have_the_course_tabs_and_the_shortcuts(client, data):
    response = model_suggests(response_of(data, "alice"), score=3)
    client.force_login(data["teacher"])

    for url in (queue_url(data), detail_url(data, response)):
        content = client.get(url).content.decode()
        assert "<h1>Science</h1>" in content
        assert f'<a href="{queue_url(data)}" aria-current="page">Grading queue</a>' in content
        assert '<script src="/static/edu_dl/review.js" defer></script>' in content
        assert '<h3 id="shortcuts-heading" tabindex="-1">Keyboard shortcuts</h3>' in content
        assert "<dt><kbd>a</kbd></dt>" in content
        assert "<dt><kbd>o</kbd> or <kbd>s</kbd></dt>" in content
        assert "<dt><kbd>j</kbd> / <kbd>k</kbd></dt>" in content
        assert "<dt><kbd>?</kbd></dt><dd>Show this list</dd>" in content


def test_the_review_page_links_the_previous_and_next_answers_in_queue_order(client, data):
    # given three answers in review, in queue order: first, middle, last
    first = model_suggests(response_of(data, "alice"), score=3, priority=0.9)
    middle = model_suggests(response_of(data, "bob"), score=1, priority=0.5)
    last = model_suggests(response_of(data, "bob", item="choice"), score=0, priority=None)
    client.force_login(data["teacher"])

    # when
    at_first = client.get(detail_url(data, first)).content.decode()
    at_middle = client.get(detail_url(data, middle)).content.decode()
    at_last = client.get(detail_url(data, last)).content.decode()

    # then
    def link(response, rel, shortcut):
        return f'<a href="{detail_url(data, response)}" rel="{rel}" data-shortcut="{shortcut}">'

    assert link(middle, "next", "next") in at_first
    assert 'rel="prev"' not in at_first
    assert link(first, "prev", "previous") in at_middle
    assert link(last, "next", "next") in at_middle
    assert link(middle, "prev", "previous") in at_last
    assert 'rel="next"' not in at_last
    assert 'data-shortcut="accept">Accept 3</button>' in at_first
    assert 'data-shortcut="score"' in at_first
