"""The models page of a course's staff: training runs with their live progress, model versions
with their cards, activation and roll back, and "retrain now".

Training runs in the ``training`` queue; these pages only read the run's row (its progress and
per-epoch metrics are written there by the worker) and ask for runs through
:mod:`edu_dl.services.training`. A run's progress is polled with htmx every two seconds while
the run is queued or running; the partial of a run that has ended carries no trigger, so the
polling stops by itself. Activation and roll back go through
:mod:`edu_dl.services.model_versions`, which audits them and refuses a version whose artifact
fails its checksum; a refusal is shown with its reason and changes nothing.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST, require_safe

from edu_dl.models import Course, ModelKind, ModelVersion, TrainingRun
from edu_dl.selectors.models_pages import (
    course_active_versions,
    course_model_version_get,
    course_model_versions,
    course_training_run_get,
    course_training_runs,
    epoch_metric_series,
    model_card_metrics,
    model_version_audit_trail,
    model_version_can_roll_back,
    retrain_choices,
    retrain_target,
)
from edu_dl.services.errors import ApplicationError, NotFound
from edu_dl.services.model_versions import model_version_activate, model_version_rollback
from edu_dl.services.training import training_request
from edu_dl.web.charts import LineChart, line_chart, number
from edu_dl.web.common import course_context, staff_course_or_404

VERSIONS_PER_PAGE = 25
NOTE_MAX_LENGTH = 500


class RetrainForm(forms.Form):
    """Which model "Retrain now" trains: the course's knowledge tracing (the default, as when
    the field is left out), its recommender, or the grader of one of its items."""

    target = forms.ChoiceField(label=gettext_lazy("Model to train"))

    def __init__(self, *args, choices: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = choices


class ActivationForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Why (optional, kept in the audit trail)"),
        required=False,
        max_length=NOTE_MAX_LENGTH,
    )


def _run_or_404(request: HttpRequest, course: Course, run_id: int) -> TrainingRun:
    try:
        return course_training_run_get(viewer=request.user, course=course, run_id=run_id)
    except NotFound as error:
        raise Http404(error.message) from error


def _version_or_404(request: HttpRequest, course: Course, version_id: int) -> ModelVersion:
    try:
        return course_model_version_get(viewer=request.user, course=course, version_id=version_id)
    except NotFound as error:
        raise Http404(error.message) from error


def _epoch_chart(run: TrainingRun) -> LineChart:
    return line_chart(
        title=_("Metrics per epoch of run #%(number)s") % {"number": run.pk},
        series=epoch_metric_series(run),
        x_label=_("Epoch"),
        y_label=_("Value"),
        y_range=None,
        y_format=number,
    )


# --- Pages ---------------------------------------------------------------------------------------


@require_safe
@login_required
def models_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The course's training runs with live progress, the versions serving now, every version
    (25 a page) and the "Retrain now" form."""
    course = staff_course_or_404(request, slug)
    context = course_context(request, course, tab="models_page")
    context.update(
        training_runs=course_training_runs(viewer=request.user, course=course),
        active_versions=course_active_versions(viewer=request.user, course=course),
        versions_page=Paginator(
            course_model_versions(viewer=request.user, course=course), VERSIONS_PER_PAGE
        ).get_page(request.GET.get("versions")),
        retrain_form=RetrainForm(
            choices=retrain_choices(viewer=request.user, course=course),
            initial={"target": ModelKind.KT.value},
        ),
    )
    return render(request, "edu_dl/models/models_page.html", context)


@require_safe
@login_required
def training_run_progress(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    """A run's progress bar, number, stage and status: what the models page polls. Once the
    run has ended the answer has no polling trigger, so the page stops asking."""
    course = staff_course_or_404(request, slug)
    run = _run_or_404(request, course, run_id)
    return render(
        request,
        "edu_dl/models/_run_progress.html",
        {"course": course, "run": run, "poll": True},
    )


@require_safe
@login_required
def training_run_detail(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    """One run: what it trains, who asked, when, its progress and its metrics per epoch as a
    chart. While the run is open the page polls its progress and its chart; an htmx request
    gets the chart's region only."""
    course = staff_course_or_404(request, slug)
    run = _run_or_404(request, course, run_id)
    context = course_context(request, course, tab="models_page")
    context.update(run=run, metrics_chart=_epoch_chart(run))
    if request.htmx:
        return render(request, "edu_dl/models/_run_metrics.html", context)
    return render(request, "edu_dl/models/training_run_detail.html", context)


@require_safe
@login_required
def model_version_detail(request: HttpRequest, slug: str, version_id: int) -> HttpResponse:
    """A version's model card: what it is, how good, from what data, who trained it, and its
    audit trail; with its activate or roll back button."""
    course = staff_course_or_404(request, slug)
    version = _version_or_404(request, course, version_id)
    context = course_context(request, course, tab="models_page")
    context.update(
        version=version,
        metric_groups=model_card_metrics(version.metrics),
        can_roll_back=model_version_can_roll_back(version=version),
        audit_trail=model_version_audit_trail(viewer=request.user, version=version),
        activation_form=ActivationForm(),
    )
    return render(request, "edu_dl/models/model_version_detail.html", context)


# --- Writes --------------------------------------------------------------------------------------


@require_POST
@login_required
def course_training_request(request: HttpRequest, slug: str) -> HttpResponse:
    """Ask for one of the course's models to be trained again (course staff only): knowledge
    tracing when the form names none, else the recommender or an item's grader."""
    course = staff_course_or_404(request, slug)
    data = request.POST if "target" in request.POST else {"target": ModelKind.KT.value}
    form = RetrainForm(data, choices=retrain_choices(viewer=request.user, course=course))
    target = (
        retrain_target(viewer=request.user, course=course, choice=form.cleaned_data["target"])
        if form.is_valid()
        else None
    )
    if target is None:
        messages.error(
            request,
            _("Training was not started: %(reason)s")
            % {"reason": _("choose one of the models of this course.")},
        )
        return redirect("edu_dl:models_page", slug=course.slug)
    kind, item = target
    try:
        run = training_request(
            kind=kind,
            course=None if item is not None else course,
            item=item,
            requested_by=request.user,
        )
    except ApplicationError as error:
        messages.error(
            request, _("Training was not started: %(reason)s") % {"reason": error.message}
        )
    else:
        messages.success(
            request,
            _("Training run #%(number)s requested (status: %(status)s).")
            % {"number": run.pk, "status": run.get_status_display()},
        )
    return redirect("edu_dl:models_page", slug=course.slug)


@require_POST
@login_required
def model_version_activate_view(request: HttpRequest, slug: str, version_id: int) -> HttpResponse:
    """Make this version the one that serves its scope (audited, with the optional note); a
    version whose artifact fails its checksum is refused and the active one keeps serving."""
    course = staff_course_or_404(request, slug)
    version = _version_or_404(request, course, version_id)
    form = ActivationForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            _("Version %(version)s was not activated: %(reason)s")
            % {"version": version.version, "reason": " ".join(form.errors.get("note", []))},
        )
        return redirect("edu_dl:model_version_detail", slug=course.slug, version_id=version.pk)
    if version.status == ModelVersion.Status.ACTIVE:
        messages.info(
            request, _("Version %(version)s is already active.") % {"version": version.version}
        )
        return redirect("edu_dl:model_version_detail", slug=course.slug, version_id=version.pk)
    try:
        model_version_activate(version=version, actor=request.user, note=form.cleaned_data["note"])
    except ApplicationError as error:
        messages.error(
            request,
            _("Version %(version)s was not activated: %(reason)s")
            % {"version": version.version, "reason": error.message},
        )
    else:
        messages.success(
            request,
            _("Version %(version)s of the %(kind)s model is now active.")
            % {"version": version.version, "kind": version.get_kind_display()},
        )
    return redirect("edu_dl:model_version_detail", slug=course.slug, version_id=version.pk)


@require_POST
@login_required
def model_rollback(request: HttpRequest, slug: str, version_id: int) -> HttpResponse:
    """Go back from this (active) version to the one that served before it, audited. Refused,
    with the reason, when this version no longer serves (the page was stale) or none served
    before it."""
    course = staff_course_or_404(request, slug)
    version = _version_or_404(request, course, version_id)
    if version.status != ModelVersion.Status.ACTIVE:
        messages.error(
            request,
            _("Nothing was rolled back: %(reason)s")
            % {
                "reason": _("version %(version)s is not the active one.")
                % {"version": version.version}
            },
        )
        return redirect("edu_dl:models_page", slug=course.slug)
    try:
        restored = model_version_rollback(
            kind=version.kind, scope_key=version.scope_key, actor=request.user
        )
    except ApplicationError as error:
        messages.error(
            request, _("Nothing was rolled back: %(reason)s") % {"reason": error.message}
        )
    else:
        messages.success(
            request,
            _("Rolled back from version %(old)s to version %(new)s.")
            % {"old": version.version, "new": restored.version},
        )
    return redirect("edu_dl:models_page", slug=course.slug)


urlpatterns = [
    path("courses/<slug:slug>/models/", models_page, name="models_page"),
    path(
        "courses/<slug:slug>/models/runs/<int:run_id>/",
        training_run_detail,
        name="training_run_detail",
    ),
    path(
        "courses/<slug:slug>/models/runs/<int:run_id>/progress/",
        training_run_progress,
        name="training_run_progress",
    ),
    path(
        "courses/<slug:slug>/models/versions/<int:version_id>/",
        model_version_detail,
        name="model_version_detail",
    ),
    path(
        "courses/<slug:slug>/models/versions/<int:version_id>/activate/",
        model_version_activate_view,
        name="model_version_activate",
    ),
    path(
        "courses/<slug:slug>/models/versions/<int:version_id>/rollback/",
        model_rollback,
        name="model_rollback",
    ),
    path("courses/<slug:slug>/training/", course_training_request, name="course_training_request"),
]
