"""Serializers of the REST API: shapes in and out, no business rules (those are the services')."""

from __future__ import annotations

from rest_framework import serializers

from edu_dl.models import (
    Assessment,
    Course,
    Enrollment,
    Item,
    ModelVersion,
    Recommendation,
    Resource,
    Response,
    Skill,
    Submission,
    TrainingRun,
)
from edu_dl.selectors.models_pages import PER_ANSWER_KEYS


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo is an error rather than silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class CourseSerializer(serializers.ModelSerializer):
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Course
        fields = ["slug", "title", "description", "my_role", "created_at"]

    def get_my_role(self, course) -> str | None:
        return getattr(course, "user_role", None)


class EnrollmentSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Enrollment
        fields = ["id", "username", "role", "created_at"]


class EnrollmentCreateSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Enrollment.Role.choices, default="student")


class SkillSerializer(serializers.ModelSerializer):
    prerequisites = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Skill
        fields = ["id", "name", "description", "external_id", "prerequisites"]


class SkillCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    external_id = serializers.CharField(required=False, allow_blank=True, default="")


class PrerequisiteSerializer(StrictSerializer):
    prerequisite = serializers.IntegerField(min_value=1)


class ItemSerializer(serializers.ModelSerializer):
    skills = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Item
        fields = [
            "id",
            "external_id",
            "kind",
            "title",
            "prompt",
            "options",
            "answer_key",
            "reference_answer",
            "min_score",
            "max_score",
            "skills",
            "is_active",
        ]


class AssessmentSerializer(serializers.ModelSerializer):
    items = serializers.SerializerMethodField()

    class Meta:
        model = Assessment
        fields = [
            "id",
            "title",
            "description",
            "opens_at",
            "due_at",
            "hold_grades_until_due",
            "is_published",
            "items",
        ]

    def get_items(self, assessment) -> list[dict]:
        """The questions as a student sees them (no answer keys)."""
        entries = assessment.entries.select_related("item").order_by("position")
        return [
            {
                "id": entry.item_id,
                "position": entry.position,
                "kind": entry.item.kind,
                "title": entry.item.title,
                "prompt": entry.item.prompt,
                "options": entry.item.options,
                "min_score": entry.item.min_score,
                "max_score": entry.item.max_score,
            }
            for entry in entries
        ]


class SubmissionCreateSerializer(StrictSerializer):
    answers = serializers.DictField(
        child=serializers.JSONField(),
        help_text="item id -> answer (a text, a number, an option id or a list of option ids)",
    )


class ResponseSerializer(serializers.Serializer):
    """A response as the viewer may see it (the score only where it is visible to them)."""

    id = serializers.IntegerField()
    item = serializers.IntegerField()
    answer = serializers.JSONField()
    status = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    max_score = serializers.FloatField()
    feedback = serializers.CharField(allow_blank=True)


class SubmissionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    assessment = serializers.IntegerField()
    student = serializers.CharField()
    status = serializers.CharField(help_text="pending, graded or needs-review")
    submitted_at = serializers.DateTimeField()
    status_url = serializers.CharField()
    responses = ResponseSerializer(many=True)


class ReviewResponseSerializer(serializers.ModelSerializer):
    """A response in a teacher's view: the model's suggestion, confidence and explanation."""

    student = serializers.CharField(source="submission.student.username")
    assessment = serializers.IntegerField(source="submission.assessment_id")

    class Meta:
        model = Response
        fields = [
            "id",
            "assessment",
            "item",
            "student",
            "answer",
            "status",
            "score",
            "grade_source",
            "confidence",
            "released",
            "feedback",
            "explanation",
            "review_priority",
            "review_reason",
            "model_version",
        ]


class AcceptSerializer(StrictSerializer):
    feedback = serializers.CharField(required=False, allow_blank=True, default="")


class OverrideSerializer(StrictSerializer):
    score = serializers.FloatField()
    feedback = serializers.CharField(required=False, allow_blank=True, default="")


class ResourceSerializer(serializers.ModelSerializer):
    skills = serializers.SerializerMethodField()

    class Meta:
        model = Resource
        fields = [
            "id",
            "external_id",
            "title",
            "kind",
            "url",
            "body",
            "skills",
            "difficulty",
            "minutes",
            "language",
            "is_active",
        ]

    def get_skills(self, resource) -> dict[str, float]:
        return {str(link.skill_id): link.weight for link in resource.skill_links.all()}


class ResourceWriteSerializer(StrictSerializer):
    title = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=Resource.Kind.choices, default="reading")
    url = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    body = serializers.CharField(required=False, allow_blank=True, default="")
    skills = serializers.DictField(
        child=serializers.FloatField(),
        required=False,
        default=dict,
        help_text="skill id -> weight (positive)",
    )
    difficulty = serializers.FloatField(required=False, default=0.5)
    minutes = serializers.IntegerField(required=False, default=10)
    language = serializers.CharField(required=False, default="en", max_length=16)
    external_id = serializers.CharField(required=False, allow_blank=True, default="")


class RecommendationSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True)

    class Meta:
        model = Recommendation
        fields = [
            "id",
            "kind",
            "rank",
            "item",
            "resource",
            "skill",
            "score",
            "reason",
            "facts",
            "model_version",
            "viewed_at",
            "completed_at",
            "feedback",
            "created_at",
        ]


class FeedbackSerializer(StrictSerializer):
    event = serializers.ChoiceField(choices=["viewed", "completed", "helpful", "not_helpful"])


class TrainingRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "kind",
            "scope_key",
            "status",
            "progress",
            "stage",
            "epoch_metrics",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class TrainingRequestSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=["kt", "recommender"])
    params = serializers.DictField(required=False, default=dict)


class ModelVersionSerializer(serializers.ModelSerializer):
    """A model version; its metrics without a grader's grades of single answers (their counts
    stay), which only its successor reads."""

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "kind",
            "scope_key",
            "version",
            "status",
            "architecture",
            "metrics",
            "data_fingerprint",
            "created_at",
            "activated_at",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if isinstance(data.get("metrics"), dict):
            data["metrics"] = {
                key: value for key, value in data["metrics"].items() if key not in PER_ANSWER_KEYS
            }
        return data


class SubmissionRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Submission
        fields = ["id", "assessment", "status", "submitted_at"]


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.CharField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=["grade.released", "training.finished"])
    )
    is_active = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="the signing secret, shown this once (stored only here)"
    )


class WebhookCreateSerializer(StrictSerializer):
    url = serializers.CharField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=["grade.released", "training.finished"])
    )


class ItemCreateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=Item.Kind.choices)
    title = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    prompt = serializers.CharField(required=False, allow_blank=True, default="")
    options = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    answer_key = serializers.JSONField(required=False, default=None)
    reference_answer = serializers.CharField(required=False, allow_blank=True, default="")
    numeric_tolerance = serializers.FloatField(required=False, allow_null=True, default=None)
    tolerance_mode = serializers.ChoiceField(
        choices=Item.ToleranceMode.choices, required=False, default="absolute"
    )
    multiple_choice_credit = serializers.ChoiceField(
        choices=Item.MultipleChoiceCredit.choices, required=False, default="all_or_nothing"
    )
    text_match = serializers.ChoiceField(
        choices=Item.TextMatch.choices, required=False, default="normalized"
    )
    min_score = serializers.FloatField(required=False, default=0.0)
    max_score = serializers.FloatField(required=False, default=1.0)
    skills = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    external_id = serializers.CharField(required=False, allow_blank=True, default="")


class AssessmentCreateSerializer(StrictSerializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    items = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    opens_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    due_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    hold_grades_until_due = serializers.BooleanField(required=False, default=False)
    is_published = serializers.BooleanField(required=False, default=True)
