"""The ORM of edu_dl, split by area and re-exported here."""

from edu_dl.models.content import Assessment, AssessmentItem, Item, Resource, ResourceSkill
from edu_dl.models.courses import Course, Enrollment, Skill, SkillPrerequisite
from edu_dl.models.integrations import ApiClient, WebhookDelivery, WebhookSubscription
from edu_dl.models.learning import (
    CourseMasterySummary,
    Interaction,
    MasteryEstimate,
    Recommendation,
    RecommendationRule,
    ResourceInteraction,
)
from edu_dl.models.mlops import AuditEvent, ModelKind, ModelVersion, ScopeType, TrainingRun
from edu_dl.models.work import AssessmentDraft, Response, ResponseGrade, Submission

__all__ = [
    "ApiClient",
    "Assessment",
    "AssessmentDraft",
    "AssessmentItem",
    "AuditEvent",
    "Course",
    "CourseMasterySummary",
    "Enrollment",
    "Interaction",
    "Item",
    "MasteryEstimate",
    "ModelKind",
    "ModelVersion",
    "Recommendation",
    "RecommendationRule",
    "Resource",
    "ResourceInteraction",
    "ResourceSkill",
    "Response",
    "ResponseGrade",
    "ScopeType",
    "Skill",
    "SkillPrerequisite",
    "Submission",
    "TrainingRun",
    "WebhookDelivery",
    "WebhookSubscription",
]
