"""The models page: training runs with live progress, run details with their metrics per
epoch, model cards, activation, roll back and "retrain now"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from edu_dl.models import AuditEvent, Course, Enrollment, Item, ModelVersion, TrainingRun
from edu_dl.services.model_versions import model_version_activate, model_version_create
from edu_dl.services.scopes import scope_resolve
from tests.factories import ModelVersionFactory, TrainingRunFactory
from tests.web.accounts import enroll, make_user

pytestmark = pytest.mark.django_db

User = get_user_model()

EPOCHS = [
    {"epoch": 1, "epochs": 3, "train_loss": 0.69, "val_auc": 0.61, "seconds": 1.5},
    {"epoch": 2, "epochs": 3, "train_loss": 0.52, "val_auc": 0.7, "seconds": 1.4},
]


# --- Local helpers -------------------------------------------------------------------------------


def url(name: str, course: Course, **kwargs) -> str:
    return reverse(f"edu_dl:{name}", kwargs={"slug": course.slug, **kwargs})


def progress_url(run: TrainingRun) -> str:
    return url("training_run_progress", run.course, run_id=run.pk)


def run_url(run: TrainingRun) -> str:
    return url("training_run_detail", run.course, run_id=run.pk)


def card_url(version: ModelVersion) -> str:
    return url("model_version_detail", version.course, version_id=version.pk)


def activate_url(version: ModelVersion) -> str:
    return url("model_version_activate", version.course, version_id=version.pk)


def rollback_url(version: ModelVersion) -> str:
    return url("model_rollback", version.course, version_id=version.pk)


def new_version(course: Course, *, kind: str = "kt", item: Item | None = None, run=None, **metrics):
    """A candidate version with a real artifact (so activation can verify it)."""
    return model_version_create(
        scope=scope_resolve(kind=kind, course=None if item else course, item=item),
        architecture="dkt",
        config={"hidden": 8},
        metrics={"val_auc": 0.71, "train_students": 20, "validation_students": 4, **metrics},
        artifact=b"weights of a tiny model",
        data_fingerprint="a" * 64,
        training_run=run,
    )


def statuses(course: Course) -> list[tuple[int, str]]:
    return list(
        ModelVersion.objects.filter(course=course)
        .order_by("version")
        .values_list("version", "status")
    )


@pytest.fixture
def school(sent):
    """Algebra with a running KT run, a finished one that made version 1 (active) and a
    candidate version 2; an essay item; biology beside it with a run and a version."""
    algebra = Course.objects.create(slug="algebra", title="Algebra")
    biology = Course.objects.create(slug="biology", title="Biology")
    people = {
        "teacher": make_user("teacher"),
        "assistant": make_user("assistant"),
        "alice": make_user("alice"),
        "bio_teacher": make_user("bio_teacher"),
        "bio_student": make_user("bio_student"),
        "stranger": make_user("stranger"),
        "admin": make_user("admin", is_superuser=True, is_staff=True),
    }
    enroll(people["teacher"], algebra, Enrollment.Role.TEACHER)
    enroll(people["assistant"], algebra, Enrollment.Role.ASSISTANT)
    enroll(people["alice"], algebra)
    enroll(people["bio_teacher"], biology, Enrollment.Role.TEACHER)
    enroll(people["bio_student"], biology)
    essay = Item.objects.create(course=algebra, kind=Item.Kind.ESSAY, title="Why add")
    Item.objects.create(course=algebra, kind=Item.Kind.NUMERIC, title="Two plus two")
    finished = TrainingRunFactory(
        course=algebra,
        status=TrainingRun.Status.SUCCEEDED,
        progress=100,
        stage="done",
        epoch_metrics=EPOCHS,
        requested_by=people["teacher"],
        idempotency_key="kt:finished",
    )
    first = new_version(algebra, run=finished)
    model_version_activate(version=first, actor=people["teacher"], note="first one")
    second = new_version(algebra, val_auc=0.69, ece=0.031)
    ModelVersion.objects.filter(pk=second.pk).update(
        gate_reason="not activated: val_auc 0.6900 is below active v1's 0.7100"
    )
    second.refresh_from_db()
    running = TrainingRunFactory(
        course=algebra,
        status=TrainingRun.Status.RUNNING,
        progress=42,
        stage="training: epoch 3 of at most 30",
        epoch_metrics=EPOCHS,
    )
    bio_run = TrainingRunFactory(course=biology, status=TrainingRun.Status.RUNNING)
    bio_version = ModelVersionFactory(course=biology)
    return {
        "algebra": algebra,
        "biology": biology,
        "essay": essay,
        "finished": finished,
        "running": running,
        "first": first,
        "second": second,
        "bio_run": bio_run,
        "bio_version": bio_version,
        **people,
    }


# --- The models page -----------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["teacher", "assistant", "admin"])
def test_the_models_page_lists_runs_versions_and_the_retrain_choices(client, school, person):
    algebra = school["algebra"]
    client.force_login(school[person])
    # When a member of staff opens the models page
    response = client.get(url("models_page", algebra))
    # Then they see algebra's runs (newest first), the version in use, every version and
    # what they may train
    assert response.status_code == 200
    assert [run.pk for run in response.context["training_runs"]] == [
        school["running"].pk,
        school["finished"].pk,
    ]
    assert [v.version for v in response.context["active_versions"]] == [1]
    assert [(v.version, v.status) for v in response.context["versions_page"]] == [
        (2, "candidate"),
        (1, "active"),
    ]
    assert response.context["retrain_form"].fields["target"].choices == [
        ("kt", "Knowledge tracing (whole course)"),
        ("recommender", "Recommender (whole course)"),
        (f"grader:{school['essay'].pk}", "Grader of the item “Why add”"),
    ]
    content = response.content.decode()
    running = school["running"]
    # the running run's progress polls, in a polite live region
    assert (
        '<div class="run-progress-region" aria-live="polite"><div class="run-progress" '
        f'id="run-progress-{running.pk}" hx-get="{progress_url(running)}" '
        'hx-trigger="every 2s" hx-swap="outerHTML">'
    ) in content
    assert '<progress class="progress-bar" max="100" value="42" aria-hidden="true"></progress>' in (
        content
    )
    assert "<strong>42%</strong>" in content
    assert "training: epoch 3 of at most 30" in content
    # the finished one does not poll, and links the version it made
    finished = school["finished"]
    assert f'<div class="run-progress" id="run-progress-{finished.pk}">' in content
    assert f'<a href="{card_url(school["first"])}">New version 1 (Active)</a>' in content
    assert f'action="{rollback_url(school["first"])}"' in content
    assert f'action="{url("course_training_request", algebra)}"' in content
    assert '<label for="id_target">Model to train</label>' in content
    assert ">Retrain now</button>" in content
    assert "not activated: val_auc 0.6900 is below active v1&#x27;s 0.7100" in content
    # and nothing of biology
    assert f'run-progress-{school["bio_run"].pk}"' not in content


def test_the_models_page_query_count_does_not_grow_with_runs_and_versions(client, school):
    algebra = school["algebra"]
    client.force_login(school["teacher"])
    with CaptureQueriesContext(connection) as few:
        client.get(url("models_page", algebra))
    for number in range(8):
        run = TrainingRunFactory(
            course=algebra,
            status=TrainingRun.Status.SUCCEEDED,
            requested_by=school["assistant"],
            idempotency_key=f"kt:old{number}",
        )
        new_version(algebra, run=run)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url("models_page", algebra))
    assert len(response.context["training_runs"]) == 10
    assert len(response.context["versions_page"]) == 10
    assert len(many.captured_queries) == len(few.captured_queries)


# --- Live progress -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["queued", "running"])
def test_the_progress_partial_polls_while_the_run_is_open(client, school, status):
    running = school["running"]
    TrainingRun.objects.filter(pk=running.pk).update(status=status)
    client.force_login(school["teacher"])
    # When the page polls an open run's progress
    response = client.get(progress_url(running), HTTP_HX_REQUEST="true")
    # Then the answer is the partial alone, and it asks to be polled again
    content = response.content.decode()
    assert response.status_code == 200
    assert content.startswith(
        f'<div class="run-progress" id="run-progress-{running.pk}" '
        f'hx-get="{progress_url(running)}" hx-trigger="every 2s" hx-swap="outerHTML">'
    )
    assert "<html" not in content
    assert "<strong>42%</strong>" in content


def test_the_progress_partial_stops_polling_once_the_run_has_finished(client, school):
    # Given the running run ends while the page polls it, making version 3
    running = school["running"]
    TrainingRun.objects.filter(pk=running.pk).update(
        status=TrainingRun.Status.SUCCEEDED, progress=100, stage="done"
    )
    made = new_version(school["algebra"], run=running)
    client.force_login(school["teacher"])
    # When the page polls once more
    response = client.get(progress_url(running), HTTP_HX_REQUEST="true")
    # Then the partial has no trigger (the polling stops) and shows the end
    content = response.content.decode()
    assert "hx-trigger" not in content
    assert "hx-get" not in content
    assert '<progress class="progress-bar" max="100" value="100" aria-hidden="true">' in content
    assert '<span class="run-status run-status-succeeded">Succeeded</span> · done' in content
    assert f'<a href="{card_url(made)}">New version 3 (Candidate)</a>' in content


def test_a_failed_run_stops_polling_and_says_why(client, school):
    running = school["running"]
    TrainingRun.objects.filter(pk=running.pk).update(
        status=TrainingRun.Status.FAILED, error="ValueError: no answers"
    )
    client.force_login(school["teacher"])
    content = client.get(progress_url(running)).content.decode()
    assert "hx-trigger" not in content
    assert "Failed: ValueError: no answers" in content


# --- A run's page --------------------------------------------------------------------------------


def test_a_runs_page_draws_its_metrics_per_epoch_and_polls_while_running(client, school):
    running = school["running"]
    client.force_login(school["teacher"])
    response = client.get(run_url(running))
    # Then the chart has one series per metric, by epoch, on a fitted number axis
    chart = response.context["metrics_chart"]
    assert [(s.name, [p.y_text for p in s.points]) for s in chart.series] == [
        ("train_loss", ["0.69", "0.52"]),
        ("val_auc", ["0.61", "0.7"]),
    ]
    assert chart.title == f"Metrics per epoch of run #{running.pk}"
    content = response.content.decode()
    # and both the progress and the chart poll
    assert f'hx-get="{progress_url(running)}" hx-trigger="every 2s"' in content
    assert (
        f'<div class="run-metrics" id="run-metrics-{running.pk}" hx-get="{run_url(running)}" '
        'hx-trigger="every 2s" hx-swap="outerHTML">'
    ) in content
    assert 'aria-live="polite"' in content


def test_the_polled_chart_of_a_run_is_the_region_alone_and_stops_when_done(client, school):
    running = school["running"]
    client.force_login(school["teacher"])
    polled = client.get(run_url(running), HTTP_HX_REQUEST="true").content.decode()
    assert polled.startswith(f'<div class="run-metrics" id="run-metrics-{running.pk}" hx-get=')
    assert "<html" not in polled
    TrainingRun.objects.filter(pk=running.pk).update(status=TrainingRun.Status.SUCCEEDED)
    ended = client.get(run_url(running), HTTP_HX_REQUEST="true").content.decode()
    assert ended.startswith(f'<div class="run-metrics" id="run-metrics-{running.pk}">')
    assert "hx-trigger" not in ended


def test_a_finished_runs_page_does_not_poll_and_lists_its_version(client, school):
    finished = school["finished"]
    client.force_login(school["teacher"])
    content = client.get(run_url(finished)).content.decode()
    assert "hx-trigger" not in content
    assert f'<a href="{card_url(school["first"])}">Version 1 (Active)</a>' in content
    assert "<dd>teacher</dd>" in content


def test_a_run_without_epochs_yet_says_so(client, school):
    TrainingRun.objects.filter(pk=school["running"].pk).update(epoch_metrics=[])
    client.force_login(school["teacher"])
    content = client.get(run_url(school["running"])).content.decode()
    assert "No data to draw yet." in content


# --- Model cards ---------------------------------------------------------------------------------


def test_the_model_card_shows_what_the_version_is_and_its_metrics(client, school):
    second = school["second"]
    client.force_login(school["teacher"])
    response = client.get(card_url(second))
    assert response.status_code == 200
    assert response.context["metric_groups"] == [
        ("Quality on held-out data", [("val_auc", "0.69")]),
        ("Calibration", [("ece", "0.031")]),
        ("Data it learnt from", [("train_students", "20"), ("validation_students", "4")]),
    ]
    content = response.content.decode()
    assert "<h2>Model card: Knowledge tracing version 2</h2>" in content
    assert "<dd>dkt</dd>" in content
    assert "<dd><strong>Candidate</strong></dd>" in content
    assert "<dd>not activated: val_auc 0.6900 is below active v1&#x27;s 0.7100</dd>" in content
    assert f"<dd><code>{'a' * 64}</code></dd>" in content
    assert "<dd>23\xa0bytes</dd>" in content
    assert f'action="{activate_url(second)}"' in content
    assert '<label for="id_note">Why (optional, kept in the audit trail)</label>' in content
    assert "This version has never been activated." in content


def test_a_graders_tuned_figures_are_shown_one_by_one_in_their_groups():
    from edu_dl.selectors.models_pages import model_card_metrics

    groups = dict(
        model_card_metrics(
            {
                "validated_qwk": 0.81,
                # Single answers' grades: read by the next grader, not shown; their count is.
                "validation_grades": [[17, 2, 2, 0.93]],
                "released_before": [[12, 1, 1]],
                "released_before_answers": 1,
                "tuned": {
                    "layers": 2,
                    "trained_on": 340,
                    "held_out_qwk_tuned": 0.79,
                    "tuning_seconds": 185.2,
                    "layers_kept": False,
                    "tuned_because": "no earlier tuned layers",
                },
            }
        )
    )

    assert groups == {
        "Quality on held-out data": [
            ("validated_qwk", "0.81"),
            ("tuned.held_out_qwk_tuned", "0.79"),
        ],
        "Data it learnt from": [("released_before_answers", "1"), ("tuned.trained_on", "340")],
        "Training": [
            ("tuned.layers", "2"),
            ("tuned.tuning_seconds", "185.2"),
            ("tuned.layers_kept", "no"),
            ("tuned.tuned_because", "no earlier tuned layers"),
        ],
    }


def test_the_active_versions_card_shows_who_trained_it_and_its_audit_trail(client, school):
    first = school["first"]
    client.force_login(school["teacher"])
    response = client.get(card_url(first))
    content = response.content.decode()
    assert [(e.action, e.note) for e in response.context["audit_trail"]] == [
        ("model.activate", "first one")
    ]
    assert (
        f'teacher · <a href="{run_url(school["finished"])}">run #{school["finished"].pk}</a>'
        in (content)
    )
    assert "<td>first one</td>" in content
    # it is the first version that served, so there is nothing to roll back to
    assert response.context["can_roll_back"] is False
    assert "nothing to roll back to" in content
    assert f'action="{activate_url(first)}"' not in content


# --- Activate and roll back ----------------------------------------------------------------------


def test_activating_a_candidate_retires_the_active_one_and_is_audited(client, school):
    algebra, second = school["algebra"], school["second"]
    client.force_login(school["assistant"])
    # When the assistant activates version 2 with a note
    response = client.post(activate_url(second), {"note": "better on recent data"}, follow=True)
    # Then it serves, version 1 is retired, and the change is audited
    assert statuses(algebra) == [(1, "retired"), (2, "active")]
    event = AuditEvent.objects.filter(action="model.activate").order_by("-pk").first()
    assert (event.actor, event.target_id, event.before, event.after, event.note) == (
        school["assistant"],
        str(second.pk),
        {"active_version": 1},
        {"active_version": 2},
        "better on recent data",
    )
    assert response.redirect_chain == [(card_url(second), 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "Version 2 of the Knowledge tracing model is now active."
    ]


def test_a_refused_activation_shows_why_and_changes_nothing(client, school):
    # Given a version whose artifact is missing
    algebra = school["algebra"]
    broken = ModelVersionFactory(
        course=algebra, version=9, status=ModelVersion.Status.CANDIDATE, artifact_path="gone.pt"
    )
    audits = AuditEvent.objects.count()
    client.force_login(school["teacher"])
    # When the teacher activates it
    response = client.post(activate_url(broken), follow=True)
    # Then nothing changed and the page says why
    assert statuses(algebra) == [(1, "active"), (2, "candidate"), (9, "candidate")]
    assert AuditEvent.objects.count() == audits
    assert [str(m) for m in response.context["messages"]] == [
        f"Version 9 was not activated: the artifact of {broken} is missing (gone.pt)"
    ]


def test_activating_the_active_version_changes_nothing(client, school):
    audits = AuditEvent.objects.count()
    client.force_login(school["teacher"])
    response = client.post(activate_url(school["first"]), follow=True)
    assert statuses(school["algebra"]) == [(1, "active"), (2, "candidate")]
    assert AuditEvent.objects.count() == audits
    assert [str(m) for m in response.context["messages"]] == ["Version 1 is already active."]


def test_a_too_long_note_is_refused_and_changes_nothing(client, school):
    client.force_login(school["teacher"])
    response = client.post(activate_url(school["second"]), {"note": "x" * 501}, follow=True)
    assert statuses(school["algebra"]) == [(1, "active"), (2, "candidate")]
    assert [str(m) for m in response.context["messages"]] == [
        "Version 2 was not activated: Ensure this value has at most 500 characters (it has 501)."
    ]


def test_rolling_back_returns_to_the_version_before_and_is_audited(client, school):
    # Given version 2 activated after version 1
    algebra, first, second = school["algebra"], school["first"], school["second"]
    model_version_activate(version=second, actor=school["teacher"])
    client.force_login(school["teacher"])
    card = client.get(card_url(second))
    assert card.context["can_roll_back"] is True
    assert f'action="{rollback_url(second)}"' in card.content.decode()
    # When the teacher rolls back
    response = client.post(rollback_url(second), follow=True)
    # Then version 1 serves again, audited
    assert statuses(algebra) == [(1, "active"), (2, "retired")]
    event = AuditEvent.objects.order_by("-pk").first()
    assert (event.action, event.actor, event.target_id, event.before, event.after) == (
        "model.rollback",
        school["teacher"],
        str(first.pk),
        {"active_version": 2},
        {"active_version": 1},
    )
    assert response.redirect_chain == [(url("models_page", algebra), 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "Rolled back from version 2 to version 1."
    ]


def test_rolling_back_the_first_version_is_refused_and_changes_nothing(client, school):
    audits = AuditEvent.objects.count()
    client.force_login(school["teacher"])
    response = client.post(rollback_url(school["first"]), follow=True)
    assert statuses(school["algebra"]) == [(1, "active"), (2, "candidate")]
    assert AuditEvent.objects.count() == audits
    scope = f"course:{school['algebra'].pk}"
    assert [str(m) for m in response.context["messages"]] == [
        f"Nothing was rolled back: kt {scope} v1 (active) is the first version that served "
        f"{scope}; nothing to roll back to"
    ]


def test_rolling_back_a_version_that_does_not_serve_is_refused(client, school):
    # Given a stale page: version 2 is not the active one
    audits = AuditEvent.objects.count()
    client.force_login(school["teacher"])
    response = client.post(rollback_url(school["second"]), follow=True)
    assert statuses(school["algebra"]) == [(1, "active"), (2, "candidate")]
    assert AuditEvent.objects.count() == audits
    assert [str(m) for m in response.context["messages"]] == [
        "Nothing was rolled back: version 2 is not the active one."
    ]


# --- Retrain now ---------------------------------------------------------------------------------


def test_staff_can_ask_for_the_recommender_to_be_trained(client, school, settings):
    settings.EDU_DL = {**settings.EDU_DL, "RECOMMENDER_MIN_FEEDBACK": 0}
    algebra = school["algebra"]
    client.force_login(school["teacher"])
    response = client.post(
        url("course_training_request", algebra), {"target": "recommender"}, follow=True
    )
    run = TrainingRun.objects.get(kind="recommender")
    assert (run.scope_key, run.status, run.requested_by) == (
        f"course:{algebra.pk}",
        "queued",
        school["teacher"],
    )
    assert [str(m) for m in response.context["messages"]] == [
        f"Training run #{run.pk} requested (status: Queued)."
    ]


def test_staff_can_ask_for_an_items_grader_to_be_trained(client, school, monkeypatch):
    monkeypatch.setattr("edu_dl.services.grader_training.MIN_TEACHER_SCORES", 0)
    essay = school["essay"]
    client.force_login(school["teacher"])
    client.post(url("course_training_request", school["algebra"]), {"target": f"grader:{essay.pk}"})
    run = TrainingRun.objects.get(kind="grader")
    assert (run.scope_type, run.item, run.course, run.requested_by) == (
        "item",
        essay,
        school["algebra"],
        school["teacher"],
    )
    # and the models page lists it with its item
    content = client.get(url("models_page", school["algebra"])).content.decode()
    assert "Grader · item “Why add”" in content


def test_a_refused_grader_request_shows_why_and_creates_nothing(client, school):
    runs = TrainingRun.objects.count()
    essay = school["essay"]
    client.force_login(school["teacher"])
    response = client.post(
        url("course_training_request", school["algebra"]),
        {"target": f"grader:{essay.pk}"},
        follow=True,
    )
    assert TrainingRun.objects.count() == runs
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith(f"Training was not started: item {essay.pk} (Why add) has 0 ")


@pytest.mark.parametrize(
    "target",
    ["grader:999999", "grader:x", "global", "kt;drop", "grader:{numeric}", "grader:{biology}"],
)
def test_a_target_that_is_not_one_of_the_courses_models_creates_nothing(client, school, target):
    numeric = Item.objects.get(title="Two plus two")
    bio_item = Item.objects.create(course=school["biology"], kind=Item.Kind.ESSAY, title="Cells")
    target = target.format(numeric=numeric.pk, biology=bio_item.pk)
    runs = TrainingRun.objects.count()
    client.force_login(school["teacher"])
    response = client.post(
        url("course_training_request", school["algebra"]), {"target": target}, follow=True
    )
    assert TrainingRun.objects.count() == runs
    assert [str(m) for m in response.context["messages"]] == [
        "Training was not started: choose one of the models of this course."
    ]


# --- Who may see and do --------------------------------------------------------------------------


def get_urls(school) -> list[str]:
    return [
        url("models_page", school["algebra"]),
        progress_url(school["running"]),
        run_url(school["running"]),
        card_url(school["second"]),
    ]


@pytest.mark.parametrize(
    ("person", "status"),
    [("alice", 403), ("bio_teacher", 404), ("bio_student", 404), ("stranger", 404)],
)
def test_only_staff_may_open_the_models_pages(client, school, person, status):
    client.force_login(school[person])
    assert [client.get(each).status_code for each in get_urls(school)] == [status] * 4


def test_anonymous_visitors_are_sent_to_login(client, school):
    for each in get_urls(school):
        response = client.get(each)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('login')}?next={each}"


@pytest.mark.parametrize(
    ("person", "status"),
    [("alice", 403), ("bio_teacher", 404), ("bio_student", 404), ("stranger", 404), (None, 302)],
)
def test_only_staff_may_activate_or_roll_back(client, school, person, status):
    model_version_activate(version=school["second"], actor=school["teacher"])
    before, audits = statuses(school["algebra"]), AuditEvent.objects.count()
    if person:
        client.force_login(school[person])
    assert client.post(activate_url(school["first"])).status_code == status
    assert client.post(rollback_url(school["second"])).status_code == status
    assert statuses(school["algebra"]) == before
    assert AuditEvent.objects.count() == audits


def test_another_courses_runs_and_versions_are_not_found_here(client, school):
    # Given algebra's teacher, who asks for biology's run and version under algebra
    algebra = school["algebra"]
    bio_run, bio_version = school["bio_run"], school["bio_version"]
    client.force_login(school["teacher"])
    for each in [
        url("training_run_progress", algebra, run_id=bio_run.pk),
        url("training_run_detail", algebra, run_id=bio_run.pk),
        url("model_version_detail", algebra, version_id=bio_version.pk),
    ]:
        assert client.get(each).status_code == 404, each
    assert (
        client.post(url("model_version_activate", algebra, version_id=bio_version.pk)).status_code
        == 404
    )
    assert client.post(url("model_rollback", algebra, version_id=bio_version.pk)).status_code == 404
    bio_version.refresh_from_db()
    assert bio_version.status == "active"


def test_writes_take_no_get_and_pages_take_no_post(client, school):
    client.force_login(school["teacher"])
    assert client.get(activate_url(school["second"])).status_code == 405
    assert client.get(rollback_url(school["first"])).status_code == 405
    assert [client.post(each).status_code for each in get_urls(school)] == [405] * 4
    assert statuses(school["algebra"]) == [(1, "active"), (2, "candidate")]


def test_the_finished_runs_activated_date_is_shown(client, school):
    ModelVersion.objects.filter(pk=school["first"].pk).update(
        activated_at=datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    )
    client.force_login(school["teacher"])
    content = client.get(url("models_page", school["algebra"])).content.decode()
    assert "<td>2025-01-02 03:04</td>" in content
