"""How long one student's mastery update takes after a graded answer (target: p95 < 100 ms).

A course with a trained DKT model (trained here through the training service, a few epochs),
and a student with 1,000 past answers. Each round records one new answer for her (not timed),
then times ``mastery_update_for_student`` - the whole service: the lock, reading her history,
the model, writing the rows that changed - as a worker runs it after grading.

    .venv/bin/python benchmarks/bench_mastery_update.py               # SQLite, 200 rounds
    .venv/bin/python benchmarks/bench_mastery_update.py --database-url  # DATABASE_URL's server

The data goes to a throw-away test database (a temporary SQLite file by default; with
``--database-url``, a ``test_...`` database created and dropped on DATABASE_URL's server).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--history", type=int, default=1000, help="the student's past answers")
    parser.add_argument("--students", type=int, default=80, help="other students (training)")
    parser.add_argument("--answers", type=int, default=100, help="answers per other student")
    parser.add_argument("--skills", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (EDU_DL)")
    parser.add_argument(
        "--database-url", action="store_true", help="use DATABASE_URL's server, not SQLite"
    )
    return parser.parse_args()


def set_up_django(arguments: argparse.Namespace) -> str:
    folder = tempfile.mkdtemp(prefix="edu_dl_bench_")
    if not arguments.database_url:
        os.environ.pop("DATABASE_URL", None)
    os.environ["EDU_DL_VAR_DIR"] = folder
    os.environ["EDU_DL_ARTIFACT_DIR"] = str(Path(folder) / "artifacts")
    os.environ["EDU_DL_TORCH_THREADS"] = str(arguments.threads)
    os.environ["DJANGO_SETTINGS_MODULE"] = "lms_site.settings.test"
    sys.path.insert(0, str(REPOSITORY))
    import django

    django.setup()
    return folder


def build_course(arguments: argparse.Namespace):
    """Skills, three items each, students whose answers follow a logistic model with practice."""
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from edu_dl.models import Item
    from edu_dl.services.courses import (
        course_create,
        enrollment_create,
        item_create,
        skill_create,
    )
    from edu_dl.services.interactions import InteractionRecord, interactions_record

    rng = np.random.default_rng(0)
    users = get_user_model()
    course = course_create(slug="bench", title="Benchmark")
    skills = [skill_create(course=course, name=f"Skill {k}") for k in range(arguments.skills)]
    items = [
        (item_create(course=course, kind=Item.Kind.NUMERIC, answer_key=1, skills=[skill]), k)
        for k, skill in enumerate(skills)
        for _ in range(3)
    ]
    difficulty = rng.normal(size=len(items))
    start = timezone.now() - timedelta(days=200)

    def answers_of(student, count: int, offset: int) -> list[InteractionRecord]:
        ability, practice, records = rng.normal(), np.zeros(len(skills)), []
        for t in range(count):
            position = int(rng.integers(len(items)))
            item, k = items[position]
            chance = 1 / (1 + np.exp(-(ability - difficulty[position] + 0.3 * practice[k])))
            practice[k] += 1
            records.append(
                InteractionRecord(
                    student_id=student.pk,
                    item_id=item.pk,
                    skill_ids=(skills[k].pk,),
                    correct=bool(rng.random() < chance),
                    timestamp=start + timedelta(minutes=offset + t),
                )
            )
        return records

    records = []
    for s in range(arguments.students):
        student = users.objects.create_user(username=f"student-{s}")
        enrollment_create(user=student, course=course)
        records += answers_of(student, arguments.answers, s * 10_000)
    alice = users.objects.create_user(username="alice")
    enrollment_create(user=alice, course=course)
    records += answers_of(alice, arguments.history, 0)
    interactions_record(course=course, records=records, source="import")
    return course, alice, [item for item, _ in items], skills


def main() -> None:
    arguments = parse_arguments()
    set_up_django(arguments)
    from celery import current_app
    from django.db import connection
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    # Messages would go to a broker; the benchmark runs the services itself.
    current_app.send_task = lambda *args, **kwargs: type("Result", (), {"id": ""})()
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        run(arguments, vendor=connection.vendor)
    finally:
        teardown_databases(databases, verbosity=0)


def run(arguments: argparse.Namespace, *, vendor: str) -> None:
    import numpy as np
    import torch
    from django.utils import timezone

    from edu_dl.models import Interaction, MasteryEstimate, ModelVersion
    from edu_dl.services.interactions import InteractionRecord, interactions_record
    from edu_dl.services.mastery import mastery_update_for_student
    from edu_dl.services.training import training_request, training_run_execute

    started = time.perf_counter()
    course, alice, items, skills = build_course(arguments)
    built = time.perf_counter() - started
    run = training_request(
        kind="kt", course=course, params={"train_config": {"epochs": arguments.epochs}}
    )
    run = training_run_execute(run_id=run.pk)
    version = ModelVersion.objects.get(training_run=run)
    assert version.status == "active", version.gate_reason
    trained = time.perf_counter() - started - built

    rng = np.random.default_rng(1)
    mastery_update_for_student(student=alice, course=course)  # loads the model: not timed
    timings, written = [], []
    for round_number in range(arguments.rounds):
        position = int(rng.integers(len(items)))
        interactions_record(
            course=course,
            records=[
                InteractionRecord(
                    student_id=alice.pk,
                    item_id=items[position].pk,
                    skill_ids=(skills[position // 3].pk,),
                    correct=bool(rng.random() < 0.6),
                    timestamp=timezone.now() + timedelta(seconds=round_number),
                )
            ],
        )
        rows_before = MasteryEstimate.objects.count()
        begin = time.perf_counter()
        mastery_update_for_student(student=alice, course=course)
        timings.append((time.perf_counter() - begin) * 1000)
        written.append(MasteryEstimate.objects.count() - rows_before)

    history = Interaction.objects.filter(student=alice, course=course).count()
    quantiles = statistics.quantiles(timings, n=100)
    print(f"database: {vendor}; torch threads: {torch.get_num_threads()}; model: {version}")
    print(
        f"course: {arguments.students + 1} students, {len(skills)} skills, "
        f"{Interaction.objects.filter(course=course).count()} answers "
        f"(built in {built:.1f} s, {version.architecture} trained {arguments.epochs} epochs "
        f"in {trained:.1f} s, "
        f"val AUC {version.metrics['val_auc']:.3f})"
    )
    print(
        f"mastery_update_for_student x {arguments.rounds}, history "
        f"{history - arguments.rounds + 1}..{history} answers (the model reads the last "
        f"{version.config.get('max_length')}), {statistics.mean(written):.1f} rows written "
        f"per update on average"
    )
    print(
        f"p50 {statistics.median(timings):.1f} ms   p95 {quantiles[94]:.1f} ms   "
        f"max {max(timings):.1f} ms   mean {statistics.mean(timings):.1f} ms   "
        f"(target p95 < 100 ms)"
    )


if __name__ == "__main__":
    main()
