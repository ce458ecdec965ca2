"""The REST API, version 1 (mounted at /api/v1/ by the site)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from edu_dl.api import roster, schema, views  # noqa: F401  (schema registers the OAuth scheme)

app_name = "edu_dl_api"

course = "courses/<slug:slug>/"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="edu_dl_api:schema", permission_classes=[]),
        name="docs",
    ),
    path("courses/", views.CourseList.as_view(), name="course_list"),
    path(course, views.CourseDetail.as_view(), name="course_detail"),
    path(course + "enrollments/", views.EnrollmentList.as_view(), name="enrollment_list"),
    path(course + "skills/", views.SkillList.as_view(), name="skill_list"),
    path(
        course + "skills/<int:skill_id>/prerequisites/",
        views.SkillPrerequisites.as_view(),
        name="skill_prerequisites",
    ),
    path(course + "items/", views.ItemList.as_view(), name="item_list"),
    path(course + "assessments/", views.AssessmentList.as_view(), name="assessment_list"),
    path(
        course + "assessments/<int:assessment_id>/",
        views.AssessmentDetail.as_view(),
        name="assessment_detail",
    ),
    path(
        course + "assessments/<int:assessment_id>/submissions/",
        views.SubmissionCreate.as_view(),
        name="submission_create",
    ),
    path(
        course + "submissions/<int:submission_id>/",
        views.SubmissionDetail.as_view(),
        name="submission_detail",
    ),
    path(course + "responses/", views.ResponseList.as_view(), name="response_list"),
    path(
        course + "responses/<int:response_id>/accept/",
        views.ResponseAccept.as_view(),
        name="response_accept",
    ),
    path(
        course + "responses/<int:response_id>/override/",
        views.ResponseOverride.as_view(),
        name="response_override",
    ),
    path(course + "interactions/", views.InteractionBulk.as_view(), name="interaction_bulk"),
    path(
        course + "students/<str:username>/progress/",
        views.StudentProgress.as_view(),
        name="student_progress",
    ),
    path(course + "mastery/", views.CourseMastery.as_view(), name="course_mastery"),
    path(course + "resources/", views.ResourceList.as_view(), name="resource_list"),
    path(
        course + "resources/<int:resource_id>/",
        views.ResourceDetail.as_view(),
        name="resource_detail",
    ),
    path(
        course + "recommendations/",
        views.RecommendationList.as_view(),
        name="recommendation_list",
    ),
    path(
        course + "recommendations/<int:recommendation_id>/feedback/",
        views.RecommendationFeedback.as_view(),
        name="recommendation_feedback",
    ),
    path(course + "training-runs/", views.TrainingRunList.as_view(), name="training_run_list"),
    path(
        course + "training-runs/<int:run_id>/",
        views.TrainingRunDetail.as_view(),
        name="training_run_detail",
    ),
    path(course + "models/", views.ModelVersionList.as_view(), name="model_list"),
    path(
        course + "models/<int:version_id>/activate/",
        views.ModelVersionActivate.as_view(),
        name="model_activate",
    ),
    path(course + "models/rollback/", views.ModelRollback.as_view(), name="model_rollback"),
    path(course + "roster/", roster.RosterImport.as_view(), name="roster_import"),
    path(course + "webhooks/", views.WebhookList.as_view(), name="webhook_list"),
    path(
        course + "webhooks/<int:webhook_id>/",
        views.WebhookDetail.as_view(),
        name="webhook_detail",
    ),
]
