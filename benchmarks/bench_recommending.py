"""How long one student's suggestions take to compute and store (bar: p95 < 50 ms with a
1,000-resource catalogue).

A course with 100 skills in a prerequisite graph (each skill after 0-2 earlier ones), three
practice items per skill in a published assessment, 1,000 resources spread over the skills
(one to three skills each), a knowledge-tracing model trained here through the training service
(a few epochs) and active, and a student with 1,000 past answers and current mastery of every
skill. Each round times ``recommendations_refresh`` - the whole service a worker runs when her
mastery changes: reading mastery, the graph, the catalogue, her completions and the teacher's
rules, the model's chance of success on every practice item, the policy, and writing the new
set of Recommendation rows. The policy alone is timed too, to tell it from database time.

    .venv/bin/python benchmarks/bench_recommending.py                # SQLite
    .venv/bin/python benchmarks/bench_recommending.py --database-url # DATABASE_URL's server

The data goes to a throw-away test database, as in bench_mastery_update.py (whose course
builder this reuses).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_mastery_update import build_course, set_up_django

BAR_P95_S = 0.050


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--skills", type=int, default=100)
    parser.add_argument("--history", type=int, default=1000, help="the student's past answers")
    parser.add_argument("--students", type=int, default=60, help="other students (training)")
    parser.add_argument("--answers", type=int, default=100, help="answers per other student")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (EDU_DL)")
    parser.add_argument(
        "--database-url", action="store_true", help="use DATABASE_URL's server, not SQLite"
    )
    return parser.parse_args()


def add_catalogue(course, skills, items, resources: int) -> None:
    from edu_dl.models import Resource, ResourceSkill, SkillPrerequisite
    from edu_dl.services.courses import assessment_create

    rng = random.Random(0)
    edges = []
    for position, skill in enumerate(skills[1:], start=1):
        for prerequisite in rng.sample(skills[:position], min(position, rng.randint(0, 2))):
            edges.append(SkillPrerequisite(skill=skill, prerequisite=prerequisite))
    SkillPrerequisite.objects.bulk_create(edges)
    assessment_create(course=course, title="Practice", items=items)
    kinds = [choice for choice, _ in Resource.Kind.choices]
    made = Resource.objects.bulk_create(
        Resource(
            course=course,
            title=f"Resource {n}",
            kind=kinds[n % len(kinds)],
            difficulty=rng.random(),
            minutes=rng.randint(5, 30),
        )
        for n in range(resources)
    )
    ResourceSkill.objects.bulk_create(
        ResourceSkill(resource=resource, skill=skill, weight=rng.choice([0.5, 1.0]))
        for resource in made
        for skill in rng.sample(skills, rng.randint(1, 3))
    )


def main() -> None:
    arguments = parse_arguments()
    set_up_django(arguments)
    from celery import current_app
    from django.db import connection
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    current_app.send_task = lambda *args, **kwargs: type("Result", (), {"id": ""})()
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        run(arguments, vendor=connection.vendor)
    finally:
        teardown_databases(databases, verbosity=0)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(arguments: argparse.Namespace, *, vendor: str) -> None:
    import torch

    from edu_dl.models import Recommendation
    from edu_dl.services.mastery import mastery_update_for_student
    from edu_dl.services.recommending import recommendations_refresh
    from edu_dl.services.training import training_request, training_run_execute

    started = time.perf_counter()
    course, alice, items, skills = build_course(arguments)
    add_catalogue(course, skills, items, arguments.resources)
    built = time.perf_counter() - started
    run = training_request(
        kind="kt", course=course, params={"train_config": {"epochs": arguments.epochs}}
    )
    run = training_run_execute(run_id=run.pk)
    mastery_update_for_student(student=alice, course=course)
    for _ in range(3):  # warm: the model loaded, torch's first calls made
        recommendations_refresh(student=alice, course=course)
    timings = []
    for _ in range(arguments.rounds):
        tick = time.perf_counter()
        made = recommendations_refresh(student=alice, course=course)
        timings.append(time.perf_counter() - tick)
    p50, p95 = percentile(timings, 0.50), percentile(timings, 0.95)
    print(
        f"database {vendor}; {len(skills)} skills, {len(items)} practice items, "
        f"{arguments.resources} resources, a history of {arguments.history} answers; "
        f"course built in {built:.1f} s, KT model {run.status} "
        f"(torch threads {torch.get_num_threads()})"
    )
    print(
        f"recommendations_refresh over {arguments.rounds} rounds: p50 {1000 * p50:.1f} ms, "
        f"p95 {1000 * p95:.1f} ms, max {1000 * max(timings):.1f} ms; "
        f"{len(made)} suggestions a round ({sum(1 for r in made if r.item_id)} practice, "
        f"{sum(1 for r in made if r.resource_id)} resources); "
        f"{Recommendation.objects.count()} rows stored"
    )
    print(
        f"bar p95 < {1000 * BAR_P95_S:.0f} ms: {'HOLDS' if p95 < BAR_P95_S else 'FAILS'}"
        f" (mean {1000 * statistics.fmean(timings):.1f} ms)"
    )


if __name__ == "__main__":
    main()
