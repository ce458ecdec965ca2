"""Setting up teaching: courses, enrolments, skills, items, assessments and resources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from edu_dl.models import (
    Assessment,
    AssessmentItem,
    Course,
    Enrollment,
    Item,
    Resource,
    ResourceSkill,
    Skill,
)
from edu_dl.services.courses import (
    ItemSpec,
    assessment_create,
    assessment_item_add,
    course_create,
    enrollment_create,
    item_bulk_create,
    item_create,
    resource_create,
    skill_create,
    skill_get_or_create,
)
from edu_dl.services.errors import Conflict, ValidationFailed
from edu_dl.services.rule_grading import rule_grade
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ItemFactory,
    SkillFactory,
    UserFactory,
)

OPENS = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# --- courses ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_course_create_stores_the_course():
    # when
    course = course_create(slug="algebra-1", title="  Algebra 1 ", description="Linear things")

    # then
    course.refresh_from_db()
    assert (course.slug, course.title, course.description, course.language) == (
        "algebra-1",
        "Algebra 1",
        "Linear things",
        "en",
    )
    assert course.is_active is True


@pytest.mark.django_db
def test_course_create_refuses_a_slug_in_use():
    # given
    CourseFactory(slug="algebra-1", title="Algebra 1")

    # when
    with pytest.raises(Conflict) as error:
        course_create(slug="algebra-1", title="Another algebra")

    # then
    assert error.value.field == "slug"
    assert error.value.message == "a course with slug 'algebra-1' already exists"
    assert list(Course.objects.values_list("title", flat=True)) == ["Algebra 1"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"slug": "algebra one", "title": "Algebra"},
            "slug",
            "slug 'algebra one' may hold only letters, digits, hyphens and underscores",
        ),
        ({"slug": "", "title": "Algebra"}, "slug", "slug must not be empty"),
        ({"slug": "algebra", "title": "   "}, "title", "title must not be empty"),
        (
            {"slug": "algebra", "title": "x" * 201},
            "title",
            "title is 201 characters long; at most 200 are allowed",
        ),
    ],
)
def test_course_create_refuses_malformed_fields(fields, field, message):
    # when
    with pytest.raises(ValidationFailed) as error:
        course_create(**fields)

    # then
    assert (error.value.field, error.value.message) == (field, message)
    assert Course.objects.count() == 0


@pytest.mark.django_db
def test_enrollment_create_enrols_the_user_with_the_role():
    # given
    user = UserFactory(username="ada")
    course = CourseFactory()

    # when
    enrollment = enrollment_create(user=user, course=course, role="teacher", external_id="T-1")

    # then
    assert list(
        Enrollment.objects.values_list("user__username", "course", "role", "external_id")
    ) == [("ada", course.pk, "teacher", "T-1")]
    assert enrollment.role == Enrollment.Role.TEACHER


@pytest.mark.django_db
def test_enrollment_create_refuses_a_user_already_enrolled():
    # given
    enrollment = EnrollmentFactory(user=UserFactory(username="ada"), role="student")

    # when
    with pytest.raises(Conflict) as error:
        enrollment_create(user=enrollment.user, course=enrollment.course, role="teacher")

    # then
    assert error.value.field == "user"
    assert error.value.message == (
        f"'ada' is already enrolled in {enrollment.course.slug!r} as student"
    )
    assert list(Enrollment.objects.values_list("pk", "role")) == [(enrollment.pk, "student")]


@pytest.mark.django_db
def test_enrollment_create_refuses_an_unknown_role():
    # given
    user, course = UserFactory(), CourseFactory()

    # when
    with pytest.raises(ValidationFailed) as error:
        enrollment_create(user=user, course=course, role="headmaster")

    # then
    assert error.value.field == "role"
    assert error.value.message == "role 'headmaster' is not one of teacher, assistant, student"
    assert Enrollment.objects.count() == 0


# --- skills -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_skill_create_refuses_a_name_the_course_already_has():
    # given
    skill = SkillFactory(name="Slope")

    # when
    with pytest.raises(Conflict) as error:
        skill_create(course=skill.course, name="Slope", description="again")

    # then
    assert error.value.field == "name"
    assert list(Skill.objects.values_list("pk", "description")) == [(skill.pk, "")]


@pytest.mark.django_db
def test_skill_create_allows_the_same_name_in_another_course():
    # given
    SkillFactory(name="Slope")

    # when
    skill_create(course=CourseFactory(), name="Slope")

    # then
    assert Skill.objects.filter(name="Slope").count() == 2


@pytest.mark.django_db
def test_skill_get_or_create_returns_the_existing_skill_unchanged():
    # given
    skill = SkillFactory(name="Slope", description="rise over run")

    # when
    found, created = skill_get_or_create(course=skill.course, name=" Slope ", description="new")

    # then
    assert (found.pk, created) == (skill.pk, False)
    assert list(Skill.objects.values_list("name", "description")) == [("Slope", "rise over run")]


@pytest.mark.django_db
def test_skill_get_or_create_creates_a_missing_skill():
    # given
    course = CourseFactory()

    # when
    skill, created = skill_get_or_create(course=course, name="Intercept", external_id="61")

    # then
    assert created is True
    assert list(Skill.objects.values_list("course", "name", "external_id")) == [
        (course.pk, "Intercept", "61")
    ]
    assert skill.name == "Intercept"


# --- items ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_item_create_stores_a_choice_item_with_its_skills():
    # given
    course = CourseFactory()
    slope, intercept = SkillFactory(course=course, name="Slope"), SkillFactory(course=course)

    # when
    item = item_create(
        course=course,
        kind="single_choice",
        title="Steepness",
        options=[{"id": "a", "text": "2"}, {"id": "b", "text": "3"}],
        answer_key="b",
        skills=[slope, intercept],
        external_id="q-1",
    )

    # then
    item.refresh_from_db()
    assert (item.kind, item.answer_key, item.external_id, item.min_score, item.max_score) == (
        "single_choice",
        "b",
        "q-1",
        0.0,
        1.0,
    )
    assert set(item.skills.all()) == {slope, intercept}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"kind": "short_answer", "min_score": 2, "max_score": 2},
            "max_score",
            "max_score (2) must be greater than min_score (2)",
        ),
        (
            {"kind": "short_answer", "min_score": 0, "max_score": -1},
            "max_score",
            "max_score (-1) must be greater than min_score (0)",
        ),
        (
            {"kind": "drawing"},
            "kind",
            "kind 'drawing' is not one of " + ", ".join(Item.Kind.values),
        ),
        (
            {"kind": "single_choice", "options": [{"id": "a", "text": "1"}], "answer_key": "a"},
            "options",
            "options must be a list of at least two choices",
        ),
        (
            {
                "kind": "single_choice",
                "options": [{"id": "a", "text": "1"}, {"id": "b", "text": "2"}],
                "answer_key": "c",
            },
            "answer_key",
            "answer_key 'c' must be the id of one of the options",
        ),
        (
            {
                "kind": "multiple_choice",
                "options": [{"id": "a", "text": "1"}, {"id": "a", "text": "2"}],
                "answer_key": ["a"],
            },
            "options",
            "option ids must be unique; repeated: a",
        ),
        (
            {"kind": "numeric", "answer_key": "forty-two"},
            "answer_key",
            "answer_key must be a finite number, not 'forty-two'",
        ),
        (
            {"kind": "numeric", "answer_key": 42, "numeric_tolerance": -0.5},
            "numeric_tolerance",
            "numeric_tolerance must not be negative",
        ),
        (
            {"kind": "exact_text", "text_match": "regex", "answer_key": "(unclosed"},
            "answer_key",
            "answer_key is not a valid regular expression: missing ) at position 9",
        ),
        (
            {"kind": "exact_text", "text_match": "regex", "answer_key": "[a-"},
            "answer_key",
            "answer_key is not a valid regular expression: "
            "unterminated character set at position 3",
        ),
        (
            {"kind": "exact_text", "text_match": "regex", "answer_key": ["a+", "b+"]},
            "answer_key",
            "answer_key of a regex exact_text item must be a regular expression (a text)",
        ),
        (
            {"kind": "exact_text", "answer_key": {"pattern": "a+"}},
            "answer_key",
            "answer_key of an exact_text item must be a text or a list of texts",
        ),
        (
            {"kind": "exact_text", "answer_key": ["Paris", "  "]},
            "answer_key",
            "answer_key of an exact_text item must be a text or a list of texts",
        ),
        (
            {"kind": "exact_text", "answer_key": None},
            "answer_key",
            "answer_key of an exact_text item must be a text or a list of texts",
        ),
        (
            {
                "kind": "multiple_choice",
                "options": [{"id": "a", "text": "1"}, {"id": "b", "text": "2"}],
                "answer_key": [{"id": "a"}],
            },
            "answer_key",
            "answer_key must be a non-empty list of distinct option ids",
        ),
        (
            {
                "kind": "multiple_choice",
                "options": [{"id": "a", "text": "1"}, {"id": "b", "text": "2"}],
                "answer_key": ["a", "a"],
            },
            "answer_key",
            "answer_key must be a non-empty list of distinct option ids",
        ),
        (
            {"kind": "numeric", "answer_key": float("nan")},
            "answer_key",
            "answer_key must be a finite number, not nan",
        ),
        (
            {
                "kind": "numeric",
                "answer_key": 0,
                "numeric_tolerance": 0.05,
                "tolerance_mode": "relative",
            },
            "tolerance_mode",
            "a relative numeric_tolerance of an answer_key of 0 allows nothing; "
            "use an absolute tolerance",
        ),
        (
            {"kind": "numeric", "answer_key": 4, "multiple_choice_credit": "proportional"},
            "multiple_choice_credit",
            "multiple_choice_credit applies to multiple_choice items only",
        ),
        (
            {"kind": "short_answer", "text_match": "regex"},
            "text_match",
            "text_match applies to exact_text items only",
        ),
        (
            {"kind": "exact_text", "answer_key": "x", "text_match": "fuzzy"},
            "text_match",
            "text_match 'fuzzy' is not one of normalized, regex",
        ),
        (
            {"kind": "essay", "empty_answer_policy": "zero"},
            "empty_answer_policy",
            "empty_answer_policy 'zero' is not one of min_score, review",
        ),
        (
            {"kind": "essay", "release_min_qwk": 1.2},
            "release_min_qwk",
            "release_min_qwk must be from 0 to 1, not 1.2",
        ),
        (
            {"kind": "short_answer", "release_min_confidence": -0.1},
            "release_min_confidence",
            "release_min_confidence must be from 0 to 1, not -0.1",
        ),
        (
            {"kind": "numeric", "answer_key": 4, "release_min_confidence": 0.9},
            "release_min_confidence",
            "release_min_confidence applies to the items a model grades (essay, short_answer) only",
        ),
        (
            {"kind": "short_answer", "answer_key": "blue"},
            "answer_key",
            "a short_answer item is graded by a model or a teacher and takes no answer_key; "
            "put the model answer in reference_answer",
        ),
        (
            {"kind": "essay", "numeric_tolerance": 1},
            "numeric_tolerance",
            "numeric_tolerance applies to numeric items only",
        ),
    ],
)
def test_item_create_refuses_a_broken_rule(fields, field, message):
    # given
    course = CourseFactory()

    # when
    with pytest.raises(ValidationFailed) as error:
        item_create(course=course, **fields)

    # then
    assert (error.value.field, error.value.message) == (field, message)
    assert Item.objects.count() == 0


@pytest.mark.django_db
def test_item_create_stores_the_grading_policy():
    # given
    course = CourseFactory()

    # when
    choice = item_create(
        course=course,
        kind="multiple_choice",
        options=[{"id": "a", "text": "2"}, {"id": "b", "text": "3"}, {"id": "c", "text": "4"}],
        answer_key=["a", "c"],
        multiple_choice_credit="proportional",
        empty_answer_policy="review",
    )
    pattern = item_create(
        course=course, kind="exact_text", text_match="regex", answer_key=r"(?i)h2o|water"
    )
    essay = item_create(course=course, kind="essay", release_min_qwk=0, release_min_confidence=1)

    # then
    rows = Item.objects.order_by("pk").values_list(
        "multiple_choice_credit",
        "text_match",
        "empty_answer_policy",
        "release_min_qwk",
        "release_min_confidence",
    )
    assert list(rows) == [
        ("proportional", "normalized", "review", None, None),
        ("all_or_nothing", "regex", "min_score", None, None),
        ("all_or_nothing", "normalized", "min_score", 0.0, 1.0),
    ]
    assert [choice.pk, pattern.pk, essay.pk] == list(
        Item.objects.order_by("pk").values_list("pk", flat=True)
    )


@pytest.mark.django_db
def test_a_regex_key_is_checked_by_the_engine_that_grades_it():
    # given a key in the syntax of the grading engine (regex) that the re module refuses:
    # Unicode properties, here an upper-case letter and lower-case ones
    course = CourseFactory()
    key = r"\p{Lu}\p{Ll}+"

    # when
    item = item_create(course=course, kind="exact_text", text_match="regex", answer_key=key)

    # then it is accepted, and grades answers with the meaning it was accepted with
    assert item.answer_key == key
    assert rule_grade(item=item, answer="Zürich").correct is True
    assert rule_grade(item=item, answer="zürich").correct is False


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["release_min_qwk", "release_min_confidence"])
def test_the_database_refuses_a_release_threshold_outside_0_to_1(field):
    # given an item made by the service
    item = ItemFactory()

    # when a write around the service sets a threshold above 1
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(**{field: 1.5})

    # then
    assert Item.objects.filter(pk=item.pk, **{f"{field}__isnull": True}).exists()


@pytest.mark.django_db
def test_item_create_refuses_a_skill_of_another_course():
    # given
    course = CourseFactory(slug="physics")
    foreign_skill = SkillFactory(name="Slope")

    # when
    with pytest.raises(ValidationFailed) as error:
        item_create(course=course, kind="short_answer", skills=[foreign_skill])

    # then
    assert error.value.field == "skills"
    assert error.value.message == "skills: Slope belong to another course than 'physics'"
    assert Item.objects.count() == 0


@pytest.mark.django_db
def test_item_create_refuses_an_external_id_in_use_in_the_course():
    # given
    item = ItemFactory(external_id="q-1")

    # when
    with pytest.raises(Conflict) as error:
        item_create(course=item.course, kind="essay", external_id="q-1")

    # then
    assert error.value.field == "external_id"
    assert list(Item.objects.values_list("pk", flat=True)) == [item.pk]


@pytest.mark.django_db
def test_item_bulk_create_writes_nothing_when_one_spec_is_wrong():
    # given
    course = CourseFactory()
    specs = [
        ItemSpec(kind="short_answer", external_id="p-1"),
        ItemSpec(kind="numeric", answer_key=None, external_id="p-2"),
    ]

    # when
    with pytest.raises(ValidationFailed) as error:
        item_bulk_create(course=course, specs=specs)

    # then
    assert error.value.message == "item 1: answer_key must be a finite number, not None"
    assert Item.objects.count() == 0


@pytest.mark.django_db
def test_item_bulk_create_stores_the_items_with_their_skills():
    # given
    course = CourseFactory()
    slope = SkillFactory(course=course)
    specs = [
        ItemSpec(kind="short_answer", external_id="p-1", skills=[slope, slope]),
        ItemSpec(kind="numeric", answer_key=3.5, numeric_tolerance=0.1, external_id="p-2"),
    ]

    # when
    items = item_bulk_create(course=course, specs=specs)

    # then
    assert [item.external_id for item in items] == ["p-1", "p-2"]
    assert list(Item.objects.filter(skills=slope).values_list("external_id", flat=True)) == ["p-1"]
    assert Item.objects.get(external_id="p-2").numeric_tolerance == 0.1


# --- assessments ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_assessment_create_places_the_items_in_order():
    # given
    course = CourseFactory()
    first, second = ItemFactory(course=course), ItemFactory(course=course, numeric=True)

    # when
    assessment = assessment_create(
        course=course,
        title="Quiz 1",
        items=[second, first],
        opens_at=OPENS,
        due_at=OPENS + timedelta(days=7),
    )

    # then
    assert list(assessment.entries.values_list("position", "item")) == [
        (1, second.pk),
        (2, first.pk),
    ]


@pytest.mark.django_db
def test_assessment_create_refuses_a_due_date_before_it_opens():
    # given
    course = CourseFactory()

    # when
    with pytest.raises(ValidationFailed) as error:
        assessment_create(
            course=course, title="Quiz", opens_at=OPENS, due_at=OPENS - timedelta(hours=1)
        )

    # then
    assert (error.value.field, error.value.message) == (
        "due_at",
        "due_at must be later than opens_at",
    )
    assert Assessment.objects.count() == 0


@pytest.mark.django_db
def test_assessment_create_refuses_a_time_without_a_time_zone():
    # given
    course = CourseFactory()

    # when
    with pytest.raises(ValidationFailed) as error:
        assessment_create(course=course, title="Quiz", due_at=datetime(2026, 3, 9, 8, 0))

    # then
    assert (error.value.field, error.value.message) == ("due_at", "due_at must carry a time zone")
    assert Assessment.objects.count() == 0


@pytest.mark.django_db
def test_assessment_create_with_an_item_of_another_course_leaves_nothing_behind():
    # given
    course = CourseFactory()
    own_item, foreign_item = ItemFactory(course=course), ItemFactory()

    # when
    with pytest.raises(ValidationFailed) as error:
        assessment_create(course=course, title="Quiz", items=[own_item, foreign_item])

    # then
    assert error.value.field == "item"
    assert Assessment.objects.count() == 0
    assert AssessmentItem.objects.count() == 0


@pytest.mark.django_db
def test_assessment_item_add_refuses_an_item_already_in_the_assessment():
    # given
    item = ItemFactory()
    assessment = AssessmentFactory(course=item.course, items=[item])

    # when
    with pytest.raises(Conflict) as error:
        assessment_item_add(assessment=assessment, item=item)

    # then
    assert error.value.field == "item"
    assert list(assessment.entries.values_list("position", "item")) == [(1, item.pk)]


@pytest.mark.django_db
def test_assessment_item_add_refuses_a_position_that_is_taken():
    # given
    course = CourseFactory()
    first, second = ItemFactory(course=course), ItemFactory(course=course)
    assessment = AssessmentFactory(course=course, items=[first])

    # when
    with pytest.raises(Conflict) as error:
        assessment_item_add(assessment=assessment, item=second, position=1)

    # then
    assert (error.value.field, error.value.message) == (
        "position",
        "position 1 of the assessment is taken",
    )
    assert list(assessment.entries.values_list("position", "item")) == [(1, first.pk)]


# --- resources --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_resource_create_links_the_skills_with_their_weights():
    # given
    course = CourseFactory()
    slope, intercept = SkillFactory(course=course), SkillFactory(course=course)

    # when
    resource = resource_create(
        course=course,
        title="Lines",
        kind="video",
        url="https://example.com/lines",
        skills={slope: 1.0, intercept: 0.5},
        difficulty=0.3,
        minutes=6,
        external_id="r-1",
    )

    # then
    assert (resource.kind, resource.url, resource.difficulty, resource.minutes) == (
        "video",
        "https://example.com/lines",
        0.3,
        6,
    )
    assert set(ResourceSkill.objects.values_list("resource", "skill", "weight")) == {
        (resource.pk, slope.pk, 1.0),
        (resource.pk, intercept.pk, 0.5),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"difficulty": 1.5}, "difficulty", "difficulty must be between 0 and 1, not 1.5"),
        ({"minutes": 0}, "minutes", "minutes must be a whole number of at least 1"),
        (
            {"kind": "podcast"},
            "kind",
            "kind 'podcast' is not one of video, reading, exercise, interactive",
        ),
        (
            {"url": "ftp://example.com/x"},
            "url",
            "url 'ftp://example.com/x' is not an http(s) address",
        ),
        ({"title": ""}, "title", "title must not be empty"),
    ],
)
def test_resource_create_refuses_malformed_fields(fields, field, message):
    # given
    course = CourseFactory()

    # when
    with pytest.raises(ValidationFailed) as error:
        resource_create(course=course, **{"title": "Lines", **fields})

    # then
    assert (error.value.field, error.value.message) == (field, message)
    assert Resource.objects.count() == 0


@pytest.mark.django_db
def test_resource_create_refuses_a_weight_that_is_not_positive():
    # given
    skill = SkillFactory(name="Slope")

    # when
    with pytest.raises(ValidationFailed) as error:
        resource_create(course=skill.course, title="Lines", skills={skill: 0})

    # then
    assert (error.value.field, error.value.message) == (
        "skills",
        "the weight of skill 'Slope' must be positive",
    )
    assert Resource.objects.count() == 0
    assert ResourceSkill.objects.count() == 0


@pytest.mark.django_db
def test_resource_create_refuses_an_external_id_in_use_in_the_course():
    # given
    course = CourseFactory()
    resource = resource_create(course=course, title="Lines", external_id="r-1")

    # when
    with pytest.raises(Conflict) as error:
        resource_create(course=course, title="Other lines", external_id="r-1")

    # then
    assert error.value.field == "external_id"
    assert list(Resource.objects.values_list("pk", "title")) == [(resource.pk, "Lines")]
