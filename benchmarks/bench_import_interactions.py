"""How fast ``import_interactions`` stores a million answers in PostgreSQL, and re-imports them.

Run by hand (PostgreSQL reachable, the user allowed to create databases)::

    .venv/bin/python benchmarks/bench_import_interactions.py
    .venv/bin/python benchmarks/bench_import_interactions.py --format akt --answers 200000

It (re)creates the database named by ``DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/edu_dl_bench``; ``--keep-database`` reuses it), migrates
it, writes a seeded file of ``--answers`` answers (5,000 students, 20,000 items, 187 skills) to a
temporary folder, imports it into a new course through the import service, then imports it
again, which must add nothing. It prints seconds and answers per second for both. The target
is a million answers in under 60 s.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/edu_dl_bench"
STUDENTS = 5000
ITEMS = 20_000


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')


def write_csv(path: Path, answers: int, seed: int) -> None:
    """``answers`` rows: each student answers a run of items in time order."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    per_student = max(1, answers // STUDENTS)
    with open(path, "w", encoding="utf-8") as file:
        file.write("student,item,skills,correct,timestamp\n")
        written = 0
        student = 0
        while written < answers:
            student += 1
            moment = start + timedelta(days=rng.randrange(300))
            for _ in range(min(per_student, answers - written)):
                moment += timedelta(seconds=rng.randrange(5, 600))
                item = rng.randrange(ITEMS)
                skills = f"k{item % 150};k{item % 37}" if item % 3 == 0 else f"k{item % 150}"
                file.write(
                    f"s{student},p{item},{skills},{rng.randrange(2)},"
                    f"{moment.isoformat().replace('+00:00', 'Z')}\n"
                )
                written += 1


def write_akt(path: Path, answers: int, seed: int) -> None:
    """``answers`` answers in 4-line akt blocks (header ``index,id`` / items / skills / flags)."""
    rng = random.Random(seed)
    per_student = max(1, answers // STUDENTS)
    with open(path, "w", encoding="utf-8") as file:
        written = 0
        student = 0
        while written < answers:
            student += 1
            count = min(per_student, answers - written)
            items = [rng.randrange(ITEMS) for _ in range(count)]
            file.write(f"{student},{100_000 + student}\n")
            file.write(",".join(str(item) for item in items) + "\n")
            file.write(",".join(str(item % 110) for item in items) + "\n")
            file.write(",".join(str(rng.randrange(2)) for _ in items) + "\n")
            written += count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("csv", "akt"), default="csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-database", action="store_true")
    options = parser.parse_args()

    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        print(f"DATABASE_URL must name a PostgreSQL database, not {url}", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_site.settings.local")
    os.environ["DJANGO_DEBUG"] = "false"  # DEBUG would keep every query in memory
    sys.path.insert(0, str(REPOSITORY))

    if not options.keep_database:
        recreate_database(url)
    import django

    django.setup()
    from django.core.management import call_command

    from edu_dl.ml.kt import formats  # noqa: F401  (imports torch: not part of the timing)
    from edu_dl.models import Interaction
    from edu_dl.services.courses import course_create
    from edu_dl.services.importing import interactions_import

    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"answers.{options.format}"
        started = time.perf_counter()
        (write_csv if options.format == "csv" else write_akt)(path, options.answers, options.seed)
        print(
            f"wrote {options.answers:,} answers ({options.format}, "
            f"{path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )
        course = course_create(slug=f"bench-{int(time.time())}", title="Import benchmark")
        for label in ("first import", "re-import"):
            started = time.perf_counter()
            result = interactions_import(course=course, path_or_handle=path, format=options.format)
            seconds = time.perf_counter() - started
            print(
                f"{label}: {seconds:.1f} s, {result.read / seconds:,.0f} answers/s "
                f"({result.imported:,} imported, {result.already_present:,} already present; "
                f"created {result.students_created:,} students, {result.items_created:,} items, "
                f"{result.skills_created:,} skills)"
            )
        stored = Interaction.objects.filter(course=course).count()
    print(f"stored: {stored:,} answers")
    return 0 if stored == options.answers else 1


if __name__ == "__main__":
    sys.exit(main())
