"""The Django admin: every model is there, every page loads, and what services own is read-only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import Application

from edu_dl.models import (
    ApiClient,
    Assessment,
    AssessmentDraft,
    AssessmentItem,
    AuditEvent,
    Course,
    CourseMasterySummary,
    Enrollment,
    Interaction,
    Item,
    MasteryEstimate,
    ModelVersion,
    Recommendation,
    RecommendationRule,
    Resource,
    ResourceInteraction,
    ResourceSkill,
    Response,
    ResponseGrade,
    Skill,
    SkillPrerequisite,
    Submission,
    TrainingRun,
    WebhookDelivery,
    WebhookSubscription,
)
from tests.factories import ModelVersionFactory, TrainingRunFactory

User = get_user_model()

EDU_DL_MODELS = sorted(apps.get_app_config("edu_dl").get_models(), key=lambda m: m.__name__)
READ_ONLY_MODELS = [
    AuditEvent,
    CourseMasterySummary,
    MasteryEstimate,
    ModelVersion,
    Recommendation,
    Response,
    ResponseGrade,
    Submission,
    TrainingRun,
]
# Tables that grow with every answer or event: their lists must not count every row.
BIG_MODELS = [
    AuditEvent,
    Enrollment,
    Interaction,
    MasteryEstimate,
    Recommendation,
    ResourceInteraction,
    Response,
    ResponseGrade,
    Submission,
    TrainingRun,
]


def admin_url(model, action: str, *args) -> str:
    return reverse(f"admin:edu_dl_{model._meta.model_name}_{action}", args=args)


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(username="root", password="pass-word-1")


@pytest.fixture
def one_of_everything(db):
    """A row of every edu_dl model, linked the way the services would link them."""
    now = timezone.now()
    student = User.objects.create_user(username="alice")
    teacher = User.objects.create_user(username="teacher")
    course = Course.objects.create(slug="algebra", title="Algebra")
    Enrollment.objects.create(user=student, course=course, role=Enrollment.Role.STUDENT)
    Enrollment.objects.create(user=teacher, course=course, role=Enrollment.Role.TEACHER)
    counting = Skill.objects.create(course=course, name="Counting")
    adding = Skill.objects.create(course=course, name="Adding")
    SkillPrerequisite.objects.create(skill=adding, prerequisite=counting)
    item = Item.objects.create(course=course, kind=Item.Kind.NUMERIC, title="2+2", answer_key=4)
    item.skills.add(adding)
    assessment = Assessment.objects.create(course=course, title="Quiz")
    AssessmentItem.objects.create(assessment=assessment, item=item, position=1)
    AssessmentDraft.objects.create(student=student, assessment=assessment, answers={})
    resource = Resource.objects.create(course=course, title="Adding video")
    ResourceSkill.objects.create(resource=resource, skill=adding)
    submission = Submission.objects.create(
        student=student, assessment=assessment, status=Submission.Status.GRADED, submitted_at=now
    )
    run = TrainingRunFactory(
        course=course, status=TrainingRun.Status.SUCCEEDED, progress=100, requested_by=teacher
    )
    version = ModelVersionFactory(
        course=course,
        artifact_path="kt/course-1/v1.pt",
        artifact_sha256="ab" * 32,
        artifact_size=1234,
        data_fingerprint="cd" * 32,
        training_run=run,
    )
    response = Response.objects.create(
        submission=submission,
        item=item,
        answer=4,
        status=Response.Status.GRADED,
        score=1,
        grade_source=Response.GradeSource.RULE,
        released=True,
        graded_at=now,
    )
    ResponseGrade.objects.create(
        response=response,
        score=1,
        grade_source=Response.GradeSource.RULE,
        action=ResponseGrade.Action.RULE,
        released=True,
    )
    Interaction.objects.create(
        course=course,
        student=student,
        item=item,
        skill_ids=[adding.pk],
        correct=True,
        timestamp=now,
        response=response,
    )
    recommendation = Recommendation.objects.create(
        student=student, course=course, resource=resource, rank=1, score=0.9, reason="weak"
    )
    application = Application.objects.create(
        name="Moodle",
        user=teacher,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    ApiClient.objects.create(application=application).courses.add(course)
    subscription = WebhookSubscription.objects.create(
        course=course, url="https://lms.example.org/hook", events=["grade.released"], secret="s"
    )
    WebhookDelivery.objects.create(
        subscription=subscription, event="grade.released", event_id="e1", payload={"a": 1}
    )
    RecommendationRule.objects.create(
        course=course, resource=resource, action=RecommendationRule.Action.PIN, created_by=teacher
    )
    ResourceInteraction.objects.create(
        student=student,
        resource=resource,
        recommendation=recommendation,
        event=ResourceInteraction.Event.VIEWED,
        timestamp=now,
    )
    MasteryEstimate.objects.create(
        student=student, skill=adding, probability=0.7, as_of=now, model_version=version
    )
    CourseMasterySummary.objects.create(
        course=course,
        computed_at=now,
        window_days=14,
        window_start=now - timedelta(days=14),
        rule={"below": 0.6, "min_evidence": 3, "drop": 0.1},
        estimates_revision=MasteryEstimate.objects.get().pk,
        students={str(student.pk): {"overall": 0.7, "estimates": 1, "flagged": 0}},
    )
    AuditEvent.objects.create(
        actor=teacher,
        action="model.activate",
        course=course,
        target_type="model_version",
        target_id=str(version.pk),
        after={"status": "active"},
    )
    return {"course": course, "student": student, "version": version, "run": run}


def test_every_edu_dl_model_is_registered():
    unregistered = [
        model.__name__ for model in EDU_DL_MODELS if not admin.site.is_registered(model)
    ]
    assert unregistered == []


def test_the_admin_passes_djangos_checks():
    assert run_checks(tags=["admin"]) == []


@pytest.mark.parametrize("model", EDU_DL_MODELS, ids=lambda model: model.__name__)
def test_every_changelist_loads_for_a_superuser(client, superuser, one_of_everything, model):
    # Given a superuser and a row of every model
    client.force_login(superuser)
    # When they open the model's list
    response = client.get(admin_url(model, "changelist"))
    # Then it loads and shows the row
    assert response.status_code == 200
    assert response.context["cl"].result_count == model.objects.count()
    assert model.objects.count() >= 1


@pytest.mark.parametrize("model", EDU_DL_MODELS, ids=lambda model: model.__name__)
def test_every_change_page_loads_for_a_superuser(client, superuser, one_of_everything, model):
    client.force_login(superuser)
    row = model.objects.order_by("pk").first()
    response = client.get(admin_url(model, "change", row.pk))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("model", "query"),
    [(Interaction, "alice"), (Response, "alice"), (Enrollment, "alice"), (Course, "alg")],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_searching_finds_the_row(client, superuser, one_of_everything, model, query):
    client.force_login(superuser)
    response = client.get(admin_url(model, "changelist"), {"q": query})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


@pytest.mark.parametrize("model", READ_ONLY_MODELS, ids=lambda model: model.__name__)
def test_what_services_own_is_read_only(client, superuser, one_of_everything, model):
    # Given a superuser (who may do anything the admin allows)
    client.force_login(superuser)
    row = model.objects.order_by("pk").first()
    before = list(model.objects.values())
    model_admin = admin.site._registry[model]
    # Then the admin allows no add, change or delete
    assert model_admin.has_add_permission(None) is False
    assert model_admin.has_change_permission(None, row) is False
    assert model_admin.has_delete_permission(None, row) is False
    # And posting to its pages is refused and changes nothing
    assert client.get(admin_url(model, "add")).status_code == 403
    assert client.post(admin_url(model, "change", row.pk), {}).status_code == 403
    assert client.post(admin_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert list(model.objects.values()) == before


def test_a_model_versions_artifact_is_shown_but_not_editable(client, superuser, one_of_everything):
    client.force_login(superuser)
    version = one_of_everything["version"]
    response = client.get(admin_url(ModelVersion, "change", version.pk))
    content = response.content.decode()
    assert version.artifact_sha256 in content
    assert 'name="artifact_sha256"' not in content
    assert 'name="artifact_path"' not in content
    assert 'name="status"' not in content


def test_user_fields_never_offer_a_dropdown_of_every_user():
    # A dropdown would load every user of the site into the page.
    offenders = []
    for model_admin in [admin.site._registry[model] for model in EDU_DL_MODELS]:
        inline_admins = [inline(model_admin.model, admin.site) for inline in model_admin.inlines]
        for each in [model_admin, *inline_admins]:
            safe = {*each.raw_id_fields, *each.autocomplete_fields, *each.readonly_fields}
            user_fields = {
                field.name
                for field in each.model._meta.get_fields()
                if field.is_relation and field.concrete and field.related_model is User
            }
            shown = user_fields & set(each.fields) if each.fields else user_fields
            offenders += [f"{type(each).__name__}.{name}" for name in sorted(shown - safe)]
    assert offenders == []


@pytest.mark.parametrize("model", BIG_MODELS, ids=lambda model: model.__name__)
def test_big_tables_skip_the_full_count(model):
    assert admin.site._registry[model].show_full_result_count is False


def test_the_interaction_list_query_count_does_not_grow_with_the_rows(
    client, superuser, one_of_everything
):
    # Given the interaction list with one row
    client.force_login(superuser)
    course, student = one_of_everything["course"], one_of_everything["student"]
    url = admin_url(Interaction, "changelist")
    with CaptureQueriesContext(connection) as one_row:
        client.get(url)
    # When there are 30 rows
    Interaction.objects.bulk_create(
        Interaction(course=course, student=student, correct=False, timestamp=timezone.now())
        for _ in range(29)
    )
    with CaptureQueriesContext(connection) as many_rows:
        response = client.get(url)
    # Then the page costs the same number of queries
    assert len(response.context["cl"].result_list) == 30
    assert len(many_rows.captured_queries) == len(one_row.captured_queries)


def test_the_course_page_shows_its_enrollments_inline(client, superuser, one_of_everything):
    client.force_login(superuser)
    response = client.get(admin_url(Course, "change", one_of_everything["course"].pk))
    formsets = {
        formset.formset.prefix: formset for formset in response.context["inline_admin_formsets"]
    }
    assert list(formsets) == ["enrollments"]
    assert formsets["enrollments"].formset.total_form_count() == 2
