"""The queues workers consume, and which task goes to which.

``grading`` is latency-sensitive; ``training`` is long and may be served by GPU machines;
``default`` takes housekeeping. A student's mastery update follows each graded answer (the
student looks for it next) and takes milliseconds, so it rides the grading queue; a course-wide
mastery refresh is a long batch and goes to ``default``, where it cannot hold up grading.

Routing is a Celery router (``task_routes``) rather than a ``queue=`` argument on each task,
which Celery 5.5+ deprecates.
"""

from __future__ import annotations

DEFAULT = "default"
GRADING = "grading"
TRAINING = "training"
QUEUES = (DEFAULT, GRADING, TRAINING)

ROUTES = {
    "edu_dl.training.run": TRAINING,
    "edu_dl.training.sweep": DEFAULT,
    "edu_dl.mastery.update_student": GRADING,
    "edu_dl.grading.grade_responses": GRADING,
    "edu_dl.grading.sweep_pending": DEFAULT,
    # It runs the graders, which only the grading workers load.
    "edu_dl.grading.rescore_waiting": GRADING,
    "edu_dl.mastery.refresh_course": DEFAULT,
    # The class overview's summary: a query of a fraction of a second per course.
    "edu_dl.mastery.refresh_class_summary": DEFAULT,
    "edu_dl.mastery.refresh_class_summaries_due": DEFAULT,
    "edu_dl.tracing.retrain_due": DEFAULT,
    # Suggestions follow mastery; a student reads them on their next page, not at once.
    "edu_dl.recommending.refresh_student": DEFAULT,
    "edu_dl.recommending.refresh_course": DEFAULT,
    # LMS gradebooks and rosters (LTI Advantage): network calls to the platform, retried.
    "edu_dl.lti.grade_passback": DEFAULT,
    "edu_dl.lti.grade_passback_sweep": DEFAULT,
    "edu_dl.lti.roster_sync": DEFAULT,
    # A receiver's slow reply (up to 10 s) must never hold up grading or training.
    "edu_dl.webhooks.deliver": DEFAULT,
    "edu_dl.webhooks.send_due": DEFAULT,
}


def route_task(name, args, kwargs, options, task=None, **_) -> dict[str, str] | None:
    """Celery router: ``CELERY_TASK_ROUTES = ["edu_dl.tasks.queues.route_task"]``."""
    if name in ROUTES:
        return {"queue": ROUTES[name]}
    if name.startswith("edu_dl."):
        return {"queue": DEFAULT}
    return None
