"""How long the teacher's course overview takes to render for a big class (bar: p95 < 300 ms
for 1,000 students x 100 skills, with a constant number of queries).

A course with 1,000 students and 100 skills, a current mastery estimate for every pair (100,000
rows, re-estimated in the last three days), an older estimate three weeks ago for a third of the
pairs (so trends and drops exist), two published assessments of five items each that every
student handed in and that are graded, and an essay assessment with answers waiting in the
grading queue. Each round is one GET of the overview through Django's test client as the
course's teacher - middleware, session, the selectors, the heatmap of all 1,000 rows, the
attention list, the assessment charts - sorted by overall mastery (the costliest order to keep
stable); the query count is taken from one more round.

Each student's overall mastery and the attention list come from the course's class summary,
which production computes in a worker after mastery changes
(``edu_dl.services.class_summary.course_mastery_summary_refresh``). The benchmark calls that
service once after building the data, as the worker would, and times it; the rounds then read
the stored summary. It also times the cold path: renders with no summary stored (deleted before
each), where the page computes and stores it synchronously, as on a course's first view or
when the workers are behind. Before the timed rounds the objects loaded so far are frozen out
of the garbage collector, as ``lms_site/wsgi.py`` does in a web process after start-up
(``--no-gc-freeze`` to measure without).

    .venv/bin/python benchmarks/bench_course_overview.py                   # SQLite (a temp file)
    .venv/bin/python benchmarks/bench_course_overview.py --database-url    # PostgreSQL
    .venv/bin/python benchmarks/bench_course_overview.py --database-url postgres://...

``--database-url`` alone uses DATABASE_URL, or postgres://postgres@127.0.0.1:5432/postgres when
that is unset. The data goes to a throw-away test database (``test_edu_dl_overview_<pid>`` on
that server), dropped at the end.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
BAR_P95_S = 0.300


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument(
        "--cold-rounds", type=int, default=5, help="renders without a stored summary"
    )
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--skills", type=int, default=100)
    parser.add_argument("--items", type=int, default=5, help="items per graded assessment")
    parser.add_argument(
        "--sort", default="overall", help="the heatmap's order: name, overall or skill"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of one render"
    )
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="do not freeze start-up objects out of the garbage collector (lms_site/wsgi.py does)",
    )
    parser.add_argument(
        "--database-url",
        nargs="?",
        const=os.environ.get("DATABASE_URL") or DEFAULT_POSTGRES,
        default=None,
        help="run on this PostgreSQL server (alone: DATABASE_URL or the local default)",
    )
    return parser.parse_args()


def set_up_django(arguments: argparse.Namespace) -> None:
    folder = tempfile.mkdtemp(prefix="edu_dl_bench_")
    if arguments.database_url:
        os.environ["DATABASE_URL"] = arguments.database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ["EDU_DL_VAR_DIR"] = folder
    os.environ["EDU_DL_ARTIFACT_DIR"] = str(Path(folder) / "artifacts")
    os.environ["DJANGO_SETTINGS_MODULE"] = "lms_site.settings.test"
    sys.path.insert(0, str(REPOSITORY))
    import django

    django.setup()


def build_class(arguments: argparse.Namespace):
    """The course, its teacher, students, skills, estimates, assessments and submissions."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from edu_dl.models import (
        Assessment,
        AssessmentItem,
        Enrollment,
        Item,
        MasteryEstimate,
        ModelVersion,
        Response,
        Skill,
        Submission,
    )
    from edu_dl.services.courses import course_create, enrollment_create

    rng = random.Random(0)
    now = timezone.now()
    users = get_user_model()
    course = course_create(slug="bench", title="Benchmark")
    teacher = users.objects.create_user(username="teacher", password="x")
    enrollment_create(user=teacher, course=course, role=Enrollment.Role.TEACHER)
    students = users.objects.bulk_create(
        users(
            username=f"student{n:05d}",
            first_name=rng.choice(["Ana", "Bo", "Chen", "Dara", "Eli", "Fei", "<Gus>"]),
            last_name=f"Family{n}",
        )
        for n in range(arguments.students)
    )
    Enrollment.objects.bulk_create(
        Enrollment(user=student, course=course, role=Enrollment.Role.STUDENT)
        for student in students
    )
    skills = Skill.objects.bulk_create(
        Skill(course=course, name=f"Skill {k:03d}") for k in range(arguments.skills)
    )
    version = ModelVersion.objects.create(
        kind="kt",
        scope_type="course",
        course=course,
        scope_key=f"course:{course.pk}",
        version=1,
        status=ModelVersion.Status.ACTIVE,
        architecture="dkt",
        artifact_path="x",
        artifact_sha256="0" * 64,
        artifact_size=1,
        data_fingerprint="f",
        activated_at=now - timedelta(days=30),
    )
    old, current = [], []
    for student in students:
        for skill in skills:
            probability = rng.random()
            evidence = rng.randint(0, 20)
            if rng.random() < 1 / 3:
                old.append(
                    MasteryEstimate(
                        student=student,
                        skill=skill,
                        probability=min(1.0, max(0.0, probability + rng.uniform(-0.2, 0.3))),
                        evidence_count=max(0, evidence - 3),
                        as_of=now - timedelta(days=21),
                        is_current=False,
                        model_version=version,
                    )
                )
            current.append(
                MasteryEstimate(
                    student=student,
                    skill=skill,
                    probability=probability,
                    evidence_count=evidence,
                    as_of=now - timedelta(hours=rng.uniform(1, 72)),
                    is_current=True,
                    model_version=version,
                )
            )
    MasteryEstimate.objects.bulk_create(old, batch_size=5000)
    MasteryEstimate.objects.bulk_create(current, batch_size=5000)

    for number in (1, 2):
        assessment = Assessment.objects.create(
            course=course, title=f"Quiz {number}", due_at=now - timedelta(days=10 - number)
        )
        items = Item.objects.bulk_create(
            Item(course=course, kind=Item.Kind.NUMERIC, title=f"Quiz {number} question {k}")
            for k in range(arguments.items)
        )
        AssessmentItem.objects.bulk_create(
            AssessmentItem(assessment=assessment, item=item, position=k)
            for k, item in enumerate(items)
        )
        submissions = Submission.objects.bulk_create(
            Submission(
                student=student,
                assessment=assessment,
                status=Submission.Status.GRADED,
                submitted_at=now - timedelta(days=12 - number, minutes=rng.randint(0, 600)),
            )
            for student in students
        )
        Response.objects.bulk_create(
            (
                Response(
                    submission=submission,
                    item=item,
                    answer=1,
                    status=Response.Status.GRADED,
                    score=float(rng.random() < 0.3 + 0.6 * k / max(1, len(items) - 1)),
                    grade_source=Response.GradeSource.RULE,
                    released=True,
                )
                for submission in submissions
                for k, item in enumerate(items)
            ),
            batch_size=5000,
        )
    essay_test = Assessment.objects.create(course=course, title="Essay")
    essay = Item.objects.create(course=course, kind=Item.Kind.ESSAY, title="Why")
    AssessmentItem.objects.create(assessment=essay_test, item=essay, position=0)
    waiting = Submission.objects.bulk_create(
        Submission(
            student=student,
            assessment=essay_test,
            status=Submission.Status.NEEDS_REVIEW,
            submitted_at=now,
        )
        for student in students[:50]
    )
    Response.objects.bulk_create(
        Response(submission=submission, item=essay, answer="...", status="needs_review")
        for submission in waiting
    )
    return course, teacher, len(current), len(old)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(arguments: argparse.Namespace, *, vendor: str) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    started = time.perf_counter()
    course, teacher, current, old = build_class(arguments)
    built = time.perf_counter() - started
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    client = Client()
    client.force_login(teacher)
    url = reverse("edu_dl:course_detail", kwargs={"slug": course.slug})
    sort = arguments.sort
    if sort == "skill":
        from edu_dl.models import Skill

        sort = f"skill-{Skill.objects.filter(course=course).order_by('name').first().pk}"
    query = {"sort": sort, "order": "asc"}
    from edu_dl.models import CourseMasterySummary
    from edu_dl.services.class_summary import course_mastery_summary_refresh

    response = client.get(url, query)  # warm: templates compiled, connections ready
    assert response.status_code == 200, response.status_code
    # The cold path: no summary stored, so the page computes and stores it.
    cold = []
    for _ in range(arguments.cold_rounds):
        CourseMasterySummary.objects.filter(course=course).delete()
        tick = time.perf_counter()
        response = client.get(url, query)
        cold.append(time.perf_counter() - tick)
        assert response.status_code == 200, response.status_code
        assert response.context["mastery"].summary_as_of is None
    # What the worker does after mastery changes (and beat hourly): refresh the summary.
    tick = time.perf_counter()
    course_mastery_summary_refresh(course=course)
    refresh_s = time.perf_counter() - tick
    for _ in range(3):  # warm: templates compiled, connections and caches ready
        response = client.get(url, query)
        assert response.status_code == 200, response.status_code
        assert response.context["mastery"].summary_as_of is not None  # the stored summary
    # As lms_site/wsgi.py does once a web process has started: what start-up loaded is moved
    # out of the garbage collector's sight (``--no-gc-freeze`` measures without it).
    if arguments.gc_freeze:
        gc.collect()
        gc.freeze()
    timings = []
    for _ in range(arguments.rounds):
        tick = time.perf_counter()
        response = client.get(url, query)
        timings.append(time.perf_counter() - tick)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, query)
    rows = response.content.count(b'<tr class="heatmap-row"')
    p50, p95 = percentile(timings, 0.50), percentile(timings, 0.95)
    print(
        f"database {vendor}; {arguments.students} students x {arguments.skills} skills: "
        f"{current} current estimates, {old} older ones; 2 graded quizzes of {arguments.items} "
        f"items ({2 * arguments.students} submissions); built in {built:.1f} s"
    )
    print(
        f"course overview (sort={sort}) over {arguments.rounds} renders: p50 {1000 * p50:.1f} ms, "
        f"p95 {1000 * p95:.1f} ms, max {1000 * max(timings):.1f} ms "
        f"(mean {1000 * statistics.fmean(timings):.1f} ms); {len(queries.captured_queries)} "
        f"queries; {rows} heatmap rows, {len(response.content) / 1e6:.2f} MB of HTML"
    )
    print(f"bar p95 < {1000 * BAR_P95_S:.0f} ms: {'HOLDS' if p95 < BAR_P95_S else 'SHORT'}")
    print(
        f"cold path (no summary stored: the page computes and stores it) over {len(cold)} "
        f"renders: p50 {1000 * percentile(cold, 0.50):.1f} ms, max {1000 * max(cold):.1f} ms; "
        f"the worker's refresh alone: {1000 * refresh_s:.1f} ms"
    )
    slowest = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:5]
    for captured in slowest:
        sql = " ".join(captured["sql"].split())
        print(f"  query {1000 * float(captured['time']):.1f} ms: {sql[:110]}")
    if arguments.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        client.get(url, query)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main() -> None:
    arguments = parse_arguments()
    set_up_django(arguments)
    from django.db import connection
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    # Our own test database name, so a benchmark run beside the test suite never shares one.
    connection.settings_dict.setdefault("TEST", {})
    if connection.vendor == "postgresql":
        connection.settings_dict["TEST"]["NAME"] = f"test_edu_dl_overview_{os.getpid()}"
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        run(arguments, vendor=connection.vendor)
    finally:
        teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    main()
