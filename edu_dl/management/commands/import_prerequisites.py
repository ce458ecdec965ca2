"""``manage.py import_prerequisites``: add prerequisite edges to a course's skill graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from edu_dl.models import Course
from edu_dl.services.catalogue import RowsRejected
from edu_dl.services.errors import ApplicationError
from edu_dl.services.skill_graph import prerequisites_import


class Command(BaseCommand):
    help = (
        "Add the prerequisites in a CSV file to a course's skill graph: either the columns "
        "skill,prerequisite (one edge per row) or an exercise table with the columns name and "
        "prerequisites (comma-separated, as in the Junyi Academy exercise table). Skills are "
        "found by external id, else by name. Edges already there are skipped. If a row is wrong "
        "or the edges would make a cycle, the problems are printed and nothing is imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The CSV file to import.")
        parser.add_argument("--course", required=True, help="The course's slug.")
        parser.add_argument(
            "--create-skills",
            action="store_true",
            help="Create the skills the course lacks (named by the file's text) instead of "
            "refusing their rows.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        slug = options["course"]
        course = Course.objects.filter(slug=slug).first()
        if course is None:
            raise CommandError(f"there is no course with slug {slug!r}")
        try:
            result = prerequisites_import(
                course=course,
                path_or_handle=path,
                create_missing_skills=options["create_skills"],
            )
        except RowsRejected as error:
            for problem in error.problems:
                self.stderr.write(f"{path.name}: {problem}")
            count = len(error.problems)
            raise CommandError(
                f"{path}: {count} problem{'' if count == 1 else 's'} (listed above); "
                "nothing was imported"
            ) from error
        except ApplicationError as error:
            raise CommandError(f"{path}: {error.message}; nothing was imported") from error
        self.stdout.write(
            f"{path.name} into {slug} ({result.format.replace('_', ' ')}): {result.read} rows "
            f"read, {result.skills_created} skills created, {result.edges_added} edges added, "
            f"{result.duplicates} duplicates skipped ({result.already_present} already present, "
            f"{result.repeated} repeated in the file)"
        )
