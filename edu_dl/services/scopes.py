"""What a model or a training run is for: a course, an item, or the whole site."""

from __future__ import annotations

from dataclasses import dataclass

from edu_dl.models import Course, Item, ModelKind, ScopeType
from edu_dl.services.errors import ValidationFailed

# Which scopes each kind of model may have.
ALLOWED_SCOPES: dict[str, tuple[str, ...]] = {
    ModelKind.KT: (ScopeType.COURSE,),
    ModelKind.RECOMMENDER: (ScopeType.COURSE,),
    ModelKind.GRADER: (ScopeType.ITEM, ScopeType.GLOBAL),
}


@dataclass(frozen=True)
class Scope:
    kind: str
    scope_type: str
    course: Course | None
    item: Item | None

    @property
    def key(self) -> str:
        if self.scope_type == ScopeType.COURSE:
            return f"course:{self.course.pk}"
        if self.scope_type == ScopeType.ITEM:
            return f"item:{self.item.pk}"
        return "global"

    def fields(self) -> dict:
        """Keyword arguments that put this scope on a TrainingRun or ModelVersion."""
        return {
            "kind": self.kind,
            "scope_type": self.scope_type,
            "course": self.course,
            "item": self.item,
            "scope_key": self.key,
        }


def scope_resolve(*, kind: str, course: Course | None = None, item: Item | None = None) -> Scope:
    """The scope of a ``kind`` model for a course or an item, checked against what it may have."""
    if kind not in ModelKind.values:
        raise ValidationFailed(
            f"unknown model kind {kind!r}; use one of {', '.join(ModelKind.values)}", field="kind"
        )
    if item is not None:
        scope_type, course = ScopeType.ITEM, item.course
    elif course is not None:
        scope_type = ScopeType.COURSE
    else:
        scope_type = ScopeType.GLOBAL
    if scope_type not in ALLOWED_SCOPES[kind]:
        allowed = " or ".join(ALLOWED_SCOPES[kind])
        raise ValidationFailed(
            f"a {kind} model belongs to a {allowed}, not to a {scope_type}", field="scope"
        )
    return Scope(kind=kind, scope_type=scope_type, course=course, item=item)


def scope_of(obj) -> Scope:
    """The scope of an existing TrainingRun or ModelVersion."""
    return Scope(kind=obj.kind, scope_type=obj.scope_type, course=obj.course, item=obj.item)
