"""The course content pages of its staff: items, assessments, resources, the skill graph and
CSV imports, who may open them, and that a refused change writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from edu_dl.models import (
    Enrollment,
    Item,
    ModelVersion,
    Resource,
    ResourceSkill,
    Response,
    Skill,
    SkillPrerequisite,
    Submission,
)
from edu_dl.services.skill_graph import prerequisite_add
from edu_dl.web import content_forms
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

pytestmark = pytest.mark.django_db

User = get_user_model()

GET_PAGES = [
    "content_home",
    "content_items",
    "content_item_detail",
    "content_assessments",
    "content_assessment_detail",
    "content_resources",
    "content_skill_graph",
    "content_import",
]


# --- Local helpers -------------------------------------------------------------------------------


def url(name: str, course, **kwargs) -> str:
    return reverse(f"edu_dl:{name}", kwargs={"slug": course.slug, **kwargs})


def page_url(name: str, school) -> str:
    """The URL of one of the GET pages, for algebra (its first item or assessment)."""
    algebra = school["algebra"]
    if name == "content_item_detail":
        return url(name, algebra, item_id=school["sum_item"].pk)
    if name == "content_assessment_detail":
        return url(name, algebra, assessment_id=school["quiz"].pk)
    return url(name, algebra)


def grader_version(item: Item, *, version: int, qwk: float | None, scope_key: str | None = None):
    return ModelVersionFactory(
        kind="grader",
        scope_type="global" if scope_key == "global" else "item",
        course=None if scope_key == "global" else item.course,
        item=None if scope_key == "global" else item,
        scope_key=scope_key or f"item:{item.pk}",
        version=version,
        architecture="ridge-grader",
        metrics={} if qwk is None else {"validated_qwk": qwk},
    )


def csv_file(text: str | bytes, name: str = "upload.csv") -> SimpleUploadedFile:
    data = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


def add_items(course, count: int, skill: Skill) -> None:
    for number in range(count):
        if number % 2:
            item = ItemFactory(course=course, skills=[skill], title=f"Extra {number}")
            grader_version(item, version=1, qwk=0.7)
        else:
            ItemFactory(course=course, numeric=True, skills=[skill], title=f"Extra {number}")


def add_resources(course, count: int, skill: Skill) -> None:
    for number in range(count):
        ResourceFactory(course=course, title=f"Extra reading {number:03d}", skills={skill: 0.5})


@pytest.fixture
def school():
    """Algebra with skills, items (rule and model graded), assessments, resources, a teacher,
    an assistant and a student; biology beside it with its own teacher, student and content."""
    algebra = CourseFactory(slug="algebra", title="Algebra")
    biology = CourseFactory(slug="biology", title="Biology")
    people = {
        name: UserFactory(username=name)
        for name in ("teacher", "assistant", "alice", "bio_teacher", "bio_student", "stranger")
    }
    people["admin"] = UserFactory(username="admin", is_superuser=True, is_staff=True)
    EnrollmentFactory(user=people["teacher"], course=algebra, role=Enrollment.Role.TEACHER)
    EnrollmentFactory(user=people["assistant"], course=algebra, role=Enrollment.Role.ASSISTANT)
    EnrollmentFactory(user=people["alice"], course=algebra)
    EnrollmentFactory(user=people["bio_teacher"], course=biology, role=Enrollment.Role.TEACHER)
    EnrollmentFactory(user=people["bio_student"], course=biology)

    counting = SkillFactory(course=algebra, name="Counting", external_id="count")
    adding = SkillFactory(course=algebra, name="Adding")
    subtracting = SkillFactory(course=algebra, name="Subtracting")
    prerequisite_add(skill=adding, prerequisite=counting)
    prerequisite_add(skill=subtracting, prerequisite=adding)

    sum_item = ItemFactory(
        course=algebra, numeric=True, title="Two plus two", skills=[adding], max_score=2
    )
    choice = ItemFactory(course=algebra, single_choice=True, title="Sky colour", skills=[counting])
    essay = ItemFactory(
        course=algebra,
        kind=Item.Kind.ESSAY,
        title="Why add",
        prompt="Why do we add numbers?",
        reference_answer="To count things together.",
        skills=[adding, counting],
        max_score=4,
        release_min_qwk=0.9,
    )
    cold = ItemFactory(course=algebra, title="Cold start", reference_answer="Light scatters.")
    orphan = ItemFactory(course=algebra, title="No grader", reference_answer="")
    grader_version(essay, version=2, qwk=0.83)
    grader_version(cold, version=5, qwk=0.71, scope_key="global")

    quiz = AssessmentFactory(
        course=algebra,
        title="Quiz one",
        items=[sum_item, essay],
        opens_at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC),
        due_at=datetime(2025, 3, 8, 17, 0, tzinfo=UTC),
    )
    AssessmentFactory(course=algebra, title="Unpublished exam", items=[choice], is_published=False)
    submission = Submission.objects.create(
        student=people["alice"], assessment=quiz, status=Submission.Status.GRADED
    )
    Submission.objects.create(student=people["teacher"], assessment=quiz)  # a draft
    Response.objects.create(submission=submission, item=essay, status=Response.Status.NEEDS_REVIEW)
    Response.objects.create(
        submission=submission, item=sum_item, status=Response.Status.GRADED, score=2
    )

    video = ResourceFactory(
        course=algebra,
        title="Adding video",
        kind=Resource.Kind.VIDEO,
        url="https://example.com/adding",
        skills={adding: 1.0, counting: 0.5},
        external_id="vid-1",
    )
    old = ResourceFactory(course=algebra, title="Old sheet", is_active=False)

    bio_skill = SkillFactory(course=biology, name="Cells")
    bio_item = ItemFactory(course=biology, title="Cell walls", skills=[bio_skill])
    bio_quiz = AssessmentFactory(course=biology, title="Cells quiz", items=[bio_item])
    bio_resource = ResourceFactory(course=biology, title="Cells reading")
    return {
        "algebra": algebra,
        "biology": biology,
        **people,
        "counting": counting,
        "adding": adding,
        "subtracting": subtracting,
        "sum_item": sum_item,
        "choice": choice,
        "essay": essay,
        "cold": cold,
        "orphan": orphan,
        "quiz": quiz,
        "video": video,
        "old": old,
        "bio_skill": bio_skill,
        "bio_item": bio_item,
        "bio_quiz": bio_quiz,
        "bio_resource": bio_resource,
    }


def state() -> dict:
    """What the writes of these pages could change."""
    return {
        "resources": sorted(Resource.objects.values_list("title", "is_active", "course_id")),
        "resource_skills": sorted(ResourceSkill.objects.values_list("resource_id", "skill_id")),
        "skills": sorted(Skill.objects.values_list("course_id", "name")),
        "edges": sorted(SkillPrerequisite.objects.values_list("prerequisite_id", "skill_id")),
    }


# --- Who may open the pages ----------------------------------------------------------------------


@pytest.mark.parametrize("name", GET_PAGES)
@pytest.mark.parametrize("person", ["teacher", "assistant", "admin"])
def test_course_staff_open_every_content_page(client, school, name, person):
    client.force_login(school[person])
    response = client.get(page_url(name, school))
    assert response.status_code == 200
    content = response.content.decode()
    assert "edu_dl/content.css" in content
    assert f'href="{url("content_home", school["algebra"])}" aria-current="page"' in content


@pytest.mark.parametrize("name", GET_PAGES)
def test_students_are_forbidden_the_content_pages(client, school, name):
    client.force_login(school["alice"])
    assert client.get(page_url(name, school)).status_code == 403


@pytest.mark.parametrize("name", GET_PAGES)
@pytest.mark.parametrize("person", ["bio_teacher", "bio_student", "stranger"])
def test_other_courses_people_and_strangers_get_not_found(client, school, name, person):
    client.force_login(school[person])
    assert client.get(page_url(name, school)).status_code == 404


@pytest.mark.parametrize("name", GET_PAGES)
def test_anonymous_visitors_are_sent_to_login(client, school, name):
    target = page_url(name, school)
    response = client.get(target)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={target}"


def test_another_courses_item_and_assessment_are_not_found(client, school):
    client.force_login(school["teacher"])
    algebra = school["algebra"]
    item_url = url("content_item_detail", algebra, item_id=school["bio_item"].pk)
    assessment_url = url("content_assessment_detail", algebra, assessment_id=school["bio_quiz"].pk)
    assert client.get(item_url).status_code == 404
    assert client.get(assessment_url).status_code == 404


def post_targets(school) -> dict[str, tuple[str, dict]]:
    algebra = school["algebra"]
    return {
        "deactivate": (
            url("content_resource_deactivate", algebra, resource_id=school["video"].pk),
            {},
        ),
        "reactivate": (
            url("content_resource_reactivate", algebra, resource_id=school["old"].pk),
            {},
        ),
        "add": (
            url("content_prerequisite_add", algebra),
            {"skill": school["subtracting"].pk, "prerequisite": school["counting"].pk},
        ),
        "remove": (
            url("content_prerequisite_remove", algebra),
            {"skill": school["adding"].pk, "prerequisite": school["counting"].pk},
        ),
        "import": (
            url("content_import", algebra),
            {"kind": "resources", "file": csv_file("title,kind\nNew,video\n")},
        ),
    }


POSTS = ["deactivate", "reactivate", "add", "remove", "import"]


@pytest.mark.parametrize("target", POSTS)
@pytest.mark.parametrize(
    ("person", "status"),
    [("alice", 403), ("bio_teacher", 404), ("bio_student", 404), ("stranger", 404)],
)
def test_a_refused_write_by_someone_not_on_staff_changes_nothing(
    client, school, target, person, status
):
    # Given someone who is not on algebra's staff
    client.force_login(school[person])
    before = state()
    address, data = post_targets(school)[target]
    # When they post to one of the content pages' writes
    response = client.post(address, data)
    # Then they are refused and nothing changed
    assert response.status_code == status
    assert state() == before


@pytest.mark.parametrize("target", POSTS)
def test_an_anonymous_write_is_sent_to_login_and_changes_nothing(client, school, target):
    before = state()
    address, data = post_targets(school)[target]
    response = client.post(address, data)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={address}"
    assert state() == before


# --- The content home ----------------------------------------------------------------------------


def test_the_content_home_counts_the_courses_content(client, school):
    client.force_login(school["teacher"])
    response = client.get(url("content_home", school["algebra"]))
    counts = response.context["counts"]
    assert (counts.items, counts.active_items, counts.model_graded_items) == (5, 5, 3)
    assert (counts.assessments, counts.published_assessments) == (2, 1)
    assert (counts.resources, counts.active_resources) == (2, 1)
    assert (counts.skills, counts.prerequisites) == (3, 2)
    content = response.content.decode()
    assert f'<a href="{url("content_items", school["algebra"])}">Items</a>' in content
    assert "5 active, 3 graded by a model" in content
    assert "1 published" in content
    assert "1 in use" in content
    assert "skills, 2 prerequisites" in content


# --- Items ---------------------------------------------------------------------------------------


def test_the_items_list_shows_kind_skills_scale_and_grading(client, school):
    client.force_login(school["teacher"])
    response = client.get(url("content_items", school["algebra"]))
    rows = [
        (
            grading.item.title,
            grading.is_model_graded,
            grading.grader.version if grading.grader else None,
            grading.is_reference_grader,
            grading.validated_qwk,
        )
        for grading in response.context["gradings"]
    ]
    assert rows == [
        ("Two plus two", False, None, False, None),
        ("Sky colour", False, None, False, None),
        ("Why add", True, 2, False, 0.83),
        ("Cold start", True, 5, True, 0.71),
        ("No grader", True, None, False, None),
    ]
    content = response.content.decode()
    essay_url = url("content_item_detail", school["algebra"], item_id=school["essay"].pk)
    assert f'<th scope="row"><a href="{essay_url}">Why add</a></th>' in content
    assert "<td>Essay</td>\n      <td>Adding, Counting</td>\n      <td>4</td>" in content
    assert "item grader v2, validated QWK 0.83" in content
    assert "cold-start reference grader v5, validated QWK 0.71" in content
    assert "no grader yet: answers wait for a teacher" in content
    assert (
        "<td>Numeric</td>\n      <td>Adding</td>\n      <td>2</td>\n      <td>Rule</td>" in content
    )
    assert "5 items, in the order they were created" in content


@pytest.mark.parametrize(("trained_on", "shown"), [(30, (5, True)), (200, (2, False))])
def test_the_items_list_names_the_grader_that_scores_the_answers(client, school, trained_on, shown):
    # An item's own grader learnt from fewer teacher scores than GRADING_COLD_START_UNTIL
    # leaves its answers to the cold-start grader (the grading service's rule): the page says so.
    own = ModelVersion.objects.get(scope_key=f"item:{school['essay'].pk}")
    own.metrics = {**own.metrics, "n_train": trained_on}
    own.save(update_fields=["metrics"])
    client.force_login(school["teacher"])

    response = client.get(url("content_items", school["algebra"]))

    (essay,) = [g for g in response.context["gradings"] if g.item == school["essay"]]
    assert (essay.grader.version, essay.is_reference_grader) == shown


def test_the_items_list_has_fifty_items_a_page(client, school):
    add_items(school["algebra"], 50, school["adding"])
    client.force_login(school["teacher"])
    first = client.get(url("content_items", school["algebra"]))
    second = client.get(url("content_items", school["algebra"]), {"page": 2})
    assert len(first.context["gradings"]) == 50
    assert [grading.item.title for grading in second.context["gradings"]] == [
        f"Extra {number}" for number in range(45, 50)
    ]
    assert "Page 2 of 2" in second.content.decode()


def test_the_items_list_costs_the_same_queries_for_more_items(client, school):
    client.force_login(school["teacher"])
    address = url("content_items", school["algebra"])
    with CaptureQueriesContext(connection) as small:
        assert client.get(address).status_code == 200
    add_items(school["algebra"], 40, school["adding"])
    with CaptureQueriesContext(connection) as bigger:
        response = client.get(address)
    assert len(response.context["gradings"]) == 45
    assert len(bigger) == len(small)


def test_an_items_page_shows_prompt_reference_policy_and_responses(client, school):
    client.force_login(school["teacher"])
    essay = school["essay"]
    response = client.get(url("content_item_detail", school["algebra"], item_id=essay.pk))
    detail = response.context["detail"]
    assert detail.responses_by_status == {"pending": 0, "graded": 0, "needs_review": 1}
    assert (detail.policy.min_qwk, detail.policy.qwk_is_default) == (0.9, False)
    assert (detail.policy.min_confidence, detail.policy.confidence_is_default) == (0.5, True)
    assert detail.grader_reaches_qwk is False
    assert detail.release_point is None
    assert [assessment.title for assessment in detail.assessments] == ["Quiz one"]
    content = response.content.decode()
    assert '<blockquote class="answer">Why do we add numbers?</blockquote>' in content
    assert '<blockquote class="answer">To count things together.</blockquote>' in content
    assert "<dd>0.9</dd>" in content
    assert "<dd>from 0 to 4</dd>" in content
    assert '<dd>50% <span class="detail">(site default)</span></dd>' in content
    assert (
        "The grader's validated QWK is 0.83, and no share of its surest grades reached "
        "the threshold: every grade waits for a teacher."
    ) in content
    assert "1 response in all." in content
    assert (
        f'href="{reverse("edu_dl:review_queue", kwargs={"slug": "algebra"})}?item={essay.pk}"'
        in (content)
    )


WAITS = "measured on 40 answers that are not a random check: its grades are released once"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {},
            "Grades at 81% confidence or more are released: the grader's surest 60% of grades "
            "agreed with the teacher at QWK 0.94 (at least 0.91).",
        ),
        (
            {"released_before_answers": 25},
            "Grades at 81% confidence or more are released: of the answers the earlier graders "
            "left to the teacher, the surest 60%, with what those graders released (seen on 25 "
            "answers of the random check), agreed with the teacher at QWK 0.94 (at least 0.91).",
        ),
        (
            {"released_before_answers": 25, "release_curve": []},
            "The grader's validated QWK is 0.83, but with what earlier graders released "
            "(seen on 25 answers of the random check) no share of its surest grades would keep "
            "the threshold: every grade waits for a teacher.",
        ),
        (
            {"release_waits": WAITS, "release_curve": []},
            f"The grader is {WAITS}. Until then every grade waits for a teacher.",
        ),
    ],
    ids=["first-grader", "after-earlier-releases", "earlier-releases-shut-it", "no-random-check"],
)
def test_an_items_page_says_from_which_confidence_the_graders_grades_are_released(
    client, school, extra, expected
):
    essay = school["essay"]  # its threshold: QWK 0.9
    grader = ModelVersion.objects.get(scope_key=f"item:{essay.pk}")
    grader.metrics = {
        "validated_qwk": 0.83,
        "release_curve": [
            {"confidence": 0.81, "qwk": 0.94, "qwk_low": 0.91, "share": 0.6},
            {"confidence": 0.4, "qwk": 0.83, "qwk_low": 0.79, "share": 1.0},
        ],
        **extra,
    }
    grader.save(update_fields=["metrics"])
    client.force_login(school["teacher"])

    response = client.get(url("content_item_detail", school["algebra"], item_id=essay.pk))

    assert expected in response.content.decode()
    point = response.context["detail"].release_point
    if extra.get("release_curve") == []:
        assert point is None
    else:
        assert (point["confidence"], point["share"], point["qwk_low"]) == (0.81, 0.6, 0.91)


def test_a_choice_items_page_marks_the_correct_option_in_words(client, school):
    client.force_login(school["teacher"])
    response = client.get(
        url("content_item_detail", school["algebra"], item_id=school["choice"].pk)
    )
    content = response.content.decode()
    assert [(o.id, o.text, o.is_correct) for o in response.context["detail"].options] == [
        ("a", "Blue", True),
        ("b", "Green", False),
    ]
    assert (
        '<li class="correct-option"><span class="option-id">a</span> Blue '
        "<strong>(correct)</strong></li>" in content
    )
    assert "Release policy" not in content


def test_a_numeric_items_page_shows_its_answer_key(client, school):
    client.force_login(school["teacher"])
    response = client.get(
        url("content_item_detail", school["algebra"], item_id=school["sum_item"].pk)
    )
    assert response.context["detail"].accepted_answers == ["42"]
    assert "<li><code>42</code></li>" in response.content.decode()


# --- Assessments ---------------------------------------------------------------------------------


def test_the_assessments_list_shows_state_dates_and_counts(client, school):
    client.force_login(school["teacher"])
    response = client.get(url("content_assessments", school["algebra"]))
    assert [
        (a.title, a.is_published, a.item_count, a.submission_count)
        for a in response.context["assessments"]
    ] == [("Quiz one", True, 2, 1), ("Unpublished exam", False, 1, 0)]
    content = response.content.decode()
    assert "<td>Not published</td>" in content
    assert "<td>March 8, 2025, 5 p.m.</td>" in content


def test_an_assessments_page_lists_its_items_in_order(client, school):
    client.force_login(school["teacher"])
    response = client.get(
        url("content_assessment_detail", school["algebra"], assessment_id=school["quiz"].pk)
    )
    assert [(entry.position, entry.item.title) for entry in response.context["entries"]] == [
        (1, "Two plus two"),
        (2, "Why add"),
    ]
    content = response.content.decode()
    assert "<dt>Submissions</dt><dd>1</dd>" in content
    assert "<td>Essay</td>\n        <td>Adding, Counting</td>\n        <td>4</td>" in content


# --- Resources -----------------------------------------------------------------------------------


def test_the_resources_list_shows_kind_skills_state_and_buttons(client, school):
    client.force_login(school["teacher"])
    algebra = school["algebra"]
    response = client.get(url("content_resources", algebra))
    assert [resource.title for resource in response.context["page"]] == [
        "Adding video",
        "Old sheet",
    ]
    content = response.content.decode()
    assert '<a href="https://example.com/adding">Adding video</a>' in content
    assert 'Adding, Counting <span class="detail">(weight 0.5)</span>' in content
    video_off = url("content_resource_deactivate", algebra, resource_id=school["video"].pk)
    old_on = url("content_resource_reactivate", algebra, resource_id=school["old"].pk)
    assert f'action="{video_off}" hx-post="{video_off}"' in content
    assert f'action="{old_on}" hx-post="{old_on}"' in content
    assert (
        f'id="resource-{school["video"].pk}-toggle">Take out of use'
        '<span class="visually-hidden">: Adding video</span></button>' in content
    )
    assert '<span class="tag">Taken out of use</span>' in content


def test_the_resources_list_can_show_only_those_out_of_use(client, school):
    client.force_login(school["teacher"])
    response = client.get(url("content_resources", school["algebra"]), {"show": "inactive"})
    assert [resource.title for resource in response.context["page"]] == ["Old sheet"]
    assert '<option value="inactive" selected>' in response.content.decode()


def test_taking_a_resource_out_of_use_and_back(client, school):
    client.force_login(school["teacher"])
    algebra, video = school["algebra"], school["video"]
    # When the teacher takes the video out of use from the second page of the filtered list
    response = client.post(
        url("content_resource_deactivate", algebra, resource_id=video.pk),
        {"show": "active", "page": "2"},
    )
    # Then it is out of use and they go back to where they were, with a note
    assert response.status_code == 302
    assert response["Location"] == f"{url('content_resources', algebra)}?show=active&page=2"
    video.refresh_from_db()
    assert video.is_active is False
    followed = client.get(response["Location"])
    assert "“Adding video” was taken out of use" in followed.content.decode()
    # And putting it back makes it active again
    client.post(url("content_resource_reactivate", algebra, resource_id=video.pk))
    video.refresh_from_db()
    assert video.is_active is True


def test_an_htmx_toggle_answers_the_row_and_a_status_note(client, school):
    client.force_login(school["teacher"])
    algebra, video = school["algebra"], school["video"]
    response = client.post(
        url("content_resource_deactivate", algebra, resource_id=video.pk),
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert content.startswith(f'<tr id="resource-{video.pk}" class="inactive-row">')
    assert ">Put back in use<" in content
    assert (
        '<template><div id="resource-status" hx-swap-oob="innerHTML"><p class="message '
        'message-success">“Adding video” was taken out of use: it is no longer suggested to '
        "students.</p></div></template>" in content
    )
    video.refresh_from_db()
    assert video.is_active is False


def test_another_courses_resource_cannot_be_changed(client, school):
    client.force_login(school["teacher"])
    before = state()
    response = client.post(
        url(
            "content_resource_deactivate",
            school["algebra"],
            resource_id=school["bio_resource"].pk,
        )
    )
    assert response.status_code == 404
    assert state() == before


def test_the_resources_list_costs_the_same_queries_for_more_resources(client, school):
    client.force_login(school["teacher"])
    address = url("content_resources", school["algebra"])
    with CaptureQueriesContext(connection) as small:
        assert client.get(address).status_code == 200
    add_resources(school["algebra"], 40, school["adding"])
    with CaptureQueriesContext(connection) as bigger:
        response = client.get(address)
    assert len(response.context["page"]) == 42
    assert len(bigger) == len(small)


# --- The skill graph -----------------------------------------------------------------------------


def test_the_skill_graph_is_drawn_and_listed(client, school):
    client.force_login(school["teacher"])
    response = client.get(url("content_skill_graph", school["algebra"]))
    layout = response.context["layout"]
    counting, adding, subtracting = school["counting"], school["adding"], school["subtracting"]
    assert [(box.key, box.layer) for box in layout.nodes] == [
        (counting.pk, 0),
        (adding.pk, 1),
        (subtracting.pk, 2),
    ]
    content = response.content.decode()
    # Each skill is a link (focusable) with a title naming its neighbours
    assert (
        f'<a href="#skill-{adding.pk}" class="graph-node" aria-label="Adding. Prerequisites: '
        'Counting. Unlocks: Subtracting.">\n        <title>Adding. Prerequisites: Counting. '
        "Unlocks: Subtracting.</title>" in content
    )
    assert content.count('class="graph-edge"') == 2
    assert "<title>Counting comes before Adding</title>" in content
    # And the same graph is a table
    assert f'<th scope="row" id="skill-{counting.pk}" tabindex="-1">Counting<br>' in content
    assert (
        f'<li><a href="#skill-{counting.pk}">Counting</a> <button type="submit" '
        f'name="prerequisite" value="{counting.pk}" class="small-button">Remove<span '
        'class="visually-hidden"> Counting as a prerequisite of Adding</span></button></li>'
        in content
    )
    assert "3 skills and 2 prerequisites." in content


def test_the_skill_graph_costs_the_same_queries_for_a_bigger_graph(client, school):
    client.force_login(school["teacher"])
    address = url("content_skill_graph", school["algebra"])
    with CaptureQueriesContext(connection) as small:
        assert client.get(address).status_code == 200
    previous = school["subtracting"]
    for number in range(30):
        skill = SkillFactory(course=school["algebra"], name=f"Step {number:02d}")
        prerequisite_add(skill=skill, prerequisite=previous)
        if number % 3 == 0:
            prerequisite_add(skill=skill, prerequisite=school["counting"])
        previous = skill
    with CaptureQueriesContext(connection) as bigger:
        response = client.get(address)
    assert len(response.context["layout"].nodes) == 33
    assert len(bigger) == len(small)


def test_adding_a_prerequisite(client, school):
    client.force_login(school["teacher"])
    algebra = school["algebra"]
    response = client.post(
        url("content_prerequisite_add", algebra),
        {"skill": school["subtracting"].pk, "prerequisite": school["counting"].pk},
    )
    assert response.status_code == 302
    assert response["Location"] == url("content_skill_graph", algebra)
    assert SkillPrerequisite.objects.filter(
        skill=school["subtracting"], prerequisite=school["counting"]
    ).exists()
    followed = client.get(response["Location"])
    assert "Counting now comes before Subtracting." in followed.content.decode()


def test_a_prerequisite_that_makes_a_cycle_is_refused_with_the_cycle_named(client, school):
    client.force_login(school["teacher"])
    before = state()
    response = client.post(
        url("content_prerequisite_add", school["algebra"]),
        {"skill": school["counting"].pk, "prerequisite": school["subtracting"].pk},
    )
    assert response.status_code == 400
    assert (
        '<div class="form-errors" role="alert"><p>Not added: it would make a cycle: '
        "Counting → Adding → Subtracting → Counting.</p></div>" in response.content.decode()
    )
    assert state() == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            lambda s: {"skill": s["adding"].pk, "prerequisite": s["counting"].pk},
            "Not added: Counting is already a prerequisite of Adding.",
        ),
        (
            lambda s: {"skill": s["adding"].pk, "prerequisite": s["adding"].pk},
            "A skill cannot be a prerequisite of itself.",
        ),
        (
            lambda s: {"skill": s["adding"].pk, "prerequisite": s["bio_skill"].pk},
            "Select a valid choice.",
        ),
        (lambda s: {"skill": s["adding"].pk}, "This field is required."),
    ],
)
def test_a_refused_prerequisite_changes_nothing(client, school, data, message):
    client.force_login(school["teacher"])
    before = state()
    response = client.post(url("content_prerequisite_add", school["algebra"]), data(school))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert state() == before


def test_removing_a_prerequisite(client, school):
    client.force_login(school["teacher"])
    response = client.post(
        url("content_prerequisite_remove", school["algebra"]),
        {"skill": school["adding"].pk, "prerequisite": school["counting"].pk},
    )
    assert response.status_code == 302
    assert not SkillPrerequisite.objects.filter(
        skill=school["adding"], prerequisite=school["counting"]
    ).exists()
    assert SkillPrerequisite.objects.count() == 1
    followed = client.get(response["Location"])
    assert "Counting no longer comes before Adding." in followed.content.decode()


def test_removing_an_edge_that_is_not_there_changes_nothing(client, school):
    client.force_login(school["teacher"])
    before = state()
    response = client.post(
        url("content_prerequisite_remove", school["algebra"]),
        {"skill": school["subtracting"].pk, "prerequisite": school["counting"].pk},
        follow=True,
    )
    assert "Nothing was removed: Counting is not a prerequisite of Subtracting." in (
        response.content.decode()
    )
    assert state() == before


def test_removing_with_another_courses_skill_is_not_found(client, school):
    client.force_login(school["teacher"])
    before = state()
    response = client.post(
        url("content_prerequisite_remove", school["algebra"]),
        {"skill": school["bio_skill"].pk, "prerequisite": school["counting"].pk},
    )
    assert response.status_code == 404
    assert state() == before


# --- Imports -------------------------------------------------------------------------------------


def post_import(client, school, text, *, kind="resources", name="upload.csv", **extra):
    return client.post(
        url("content_import", school["algebra"]),
        {"kind": kind, "file": csv_file(text, name), **extra},
    )


def report_rows(response) -> list[tuple]:
    return [(row.line, row.column, row.text, row.reason) for row in response.context["report"].rows]


def test_an_accepted_resource_file_is_imported_and_summarised(client, school):
    client.force_login(school["teacher"])
    text = (
        "title,kind,external_id,skills\n"
        "Counting song,video,song-1,Counting\n"
        "Adding video again,video,vid-1,Adding:2\n"
    )
    response = post_import(client, school, text, name="catalogue.csv")
    assert response.status_code == 302
    assert response["Location"] == url("content_import", school["algebra"])
    song = Resource.objects.get(course=school["algebra"], external_id="song-1")
    assert [link.skill.name for link in song.skill_links.all()] == ["Counting"]
    school["video"].refresh_from_db()
    assert school["video"].title == "Adding video again"
    followed = client.get(response["Location"])
    assert (
        "Imported catalogue.csv: 2 rows read, 1 resources created, 1 updated, 0 unchanged."
        in followed.content.decode()
    )


def test_a_refused_resource_file_reports_every_row_and_writes_nothing(client, school):
    client.force_login(school["teacher"])
    before = state()
    text = (
        "title,kind,difficulty,skills\n"
        "Good one,video,0.5,Counting\n"
        "Bad kind,podcast,0.5,Counting\n"
        "Too hard,reading,7,Flying\n"
    )
    response = post_import(client, school, text, name="catalogue.csv")
    assert response.status_code == 400
    rows = report_rows(response)
    assert [(line, column, raw) for line, column, raw, _reason in rows] == [
        (3, "kind", "Bad kind,podcast,0.5,Counting"),
        (4, "difficulty", "Too hard,reading,7,Flying"),
        (4, "skills", "Too hard,reading,7,Flying"),
    ]
    content = response.content.decode()
    assert "catalogue.csv was not imported: 3 problems" in content
    assert "Nothing was written." in content
    assert '<td><code class="row-text">Bad kind,podcast,0.5,Counting</code></td>' in content
    assert state() == before


def test_a_file_that_is_not_utf8_is_refused_with_its_line(client, school):
    client.force_login(school["teacher"])
    before = state()
    response = post_import(client, school, "title,kind\nCaf\xe9 notes,reading\n".encode("latin-1"))
    assert response.status_code == 400
    assert report_rows(response) == [
        (2, "file", "Caf\ufffd notes,reading", "the file is not UTF-8 text")
    ]
    assert state() == before


def test_a_file_with_an_unknown_column_is_refused_at_its_header(client, school):
    client.force_login(school["teacher"])
    before = state()
    response = post_import(client, school, "title,kind,dificulty\nA,video,0.2\n")
    assert response.status_code == 400
    [(line, column, text, reason)] = report_rows(response)
    assert (line, column, text) == (1, "file", "title,kind,dificulty")
    assert "dificulty" in reason
    assert state() == before


def test_a_file_over_the_size_limit_is_refused(client, school, monkeypatch):
    monkeypatch.setattr(content_forms, "IMPORT_MAX_BYTES", 64)
    client.force_login(school["teacher"])
    before = state()
    text = "title,kind\n" + "A long title,video\n" * 10
    response = post_import(client, school, text)
    assert response.status_code == 400
    assert response.context["form"].errors["file"] == [
        f"The file is {len(text)}\xa0bytes; the largest file this page takes is 64\xa0bytes."
    ]
    assert "report" not in response.context
    assert state() == before


def test_an_import_without_a_file_is_refused(client, school):
    client.force_login(school["teacher"])
    before = state()
    response = client.post(url("content_import", school["algebra"]), {"kind": "resources"})
    assert response.status_code == 400
    assert response.context["form"].errors["file"] == ["This field is required."]
    assert state() == before


def test_an_accepted_prerequisite_file_adds_edges_and_skills(client, school):
    client.force_login(school["teacher"])
    text = "skill,prerequisite\nSubtracting,count\nMultiplying,Adding\nAdding,Counting\n"
    response = post_import(
        client, school, text, kind="prerequisites", name="graph.csv", create_missing_skills="on"
    )
    assert response.status_code == 302
    multiplying = Skill.objects.get(course=school["algebra"], name="Multiplying")
    assert set(multiplying.prerequisites.values_list("name", flat=True)) == {"Adding"}
    assert school["counting"] in school["subtracting"].prerequisites.all()
    followed = client.get(response["Location"])
    assert (
        "Imported graph.csv: 3 rows read, 2 prerequisites added, 1 skills created, "
        "1 already there or repeated." in followed.content.decode()
    )


def test_a_prerequisite_file_with_unknown_skills_is_refused_row_by_row(client, school):
    client.force_login(school["teacher"])
    before = state()
    text = "skill,prerequisite\nSubtracting,Counting\nFlying,Adding\n"
    response = post_import(client, school, text, kind="prerequisites")
    assert response.status_code == 400
    assert report_rows(response) == [
        (
            3,
            "skill",
            "Flying,Adding",
            "unknown skill 'Flying' (no skill of the course has this name or external id)",
        )
    ]
    assert state() == before


def test_a_prerequisite_file_that_makes_a_cycle_is_refused_with_its_lines(client, school):
    client.force_login(school["teacher"])
    before = state()
    text = "skill,prerequisite\nCounting,Subtracting\n"
    response = post_import(client, school, text, kind="prerequisites")
    assert response.status_code == 400
    [(line, column, raw, reason)] = report_rows(response)
    assert (line, column, raw) == (2, "prerequisite", "Counting,Subtracting")
    assert "Subtracting -> Counting" in reason
    assert state() == before


def test_a_stored_cycle_is_drawn_with_its_closing_arrow_dashed(client, school):
    # Given an edge written around the services (the admin) that closes a cycle
    SkillPrerequisite.objects.create(skill=school["counting"], prerequisite=school["subtracting"])
    client.force_login(school["teacher"])
    # When the graph page is opened
    response = client.get(url("content_skill_graph", school["algebra"]))
    # Then it is drawn, the closing arrow dashed, with a note saying so
    assert response.status_code == 200
    content = response.content.decode()
    assert content.count('class="graph-edge graph-edge-backward"') == 1
    assert "The stored prerequisites make a cycle" in content


def test_the_import_page_offers_both_kinds_of_file(client, school):
    client.force_login(school["teacher"])
    response = client.get(url("content_import", school["algebra"]))
    content = response.content.decode()
    assert "<legend>What the file holds</legend>" in content
    assert (
        '<input type="radio" name="kind" value="resources" id="id_kind_0" required checked> '
        '<label for="id_kind_0">Study resources</label>' in content
    )
    assert '<label for="id_kind_1">Prerequisites between skills</label>' in content
    assert '<label for="id_file">CSV file (UTF-8):</label>' in content
    assert 'aria-describedby="file-help"' in content
    assert '<span class="detail" id="file-help">UTF-8 text, at most 5.0\xa0MB.</span>' in content
    assert 'enctype="multipart/form-data"' in content
    assert (
        '<label for="id_create_missing_skills">Create the skills the course does not have yet '
        "(prerequisites only)</label>" in content
    )
