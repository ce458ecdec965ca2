"""The models page of a course's staff: training runs with their progress, model versions with
their cards, activation and roll back, and "retrain now".

Training runs in the ``training`` queue; these pages only read the run's row (its progress and
per-epoch metrics are written there by the worker) and ask for runs through
:mod:`edu_dl.services.training`.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from edu_dl import selectors
from edu_dl.models import ModelKind
from edu_dl.services.errors import ApplicationError
from edu_dl.services.training import training_request
from edu_dl.web.common import course_context, staff_course_or_404


@require_safe
@login_required
def models_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Training runs and model versions of the course."""
    course = staff_course_or_404(request, slug)
    context = course_context(request, course, tab="models_page")
    context["training_runs"] = selectors.training_runs_visible(user=request.user, course=course)
    return render(request, "edu_dl/models_page.html", context)


@require_POST
@login_required
def course_training_request(request: HttpRequest, slug: str) -> HttpResponse:
    """Ask for the course's knowledge-tracing model to be trained again (course staff only)."""
    course = staff_course_or_404(request, slug)
    try:
        run = training_request(kind=ModelKind.KT, course=course, requested_by=request.user)
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


urlpatterns = [
    path("courses/<slug:slug>/models/", models_page, name="models_page"),
    path("courses/<slug:slug>/training/", course_training_request, name="course_training_request"),
]
