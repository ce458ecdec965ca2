"""``manage.py import_resources``: create and update a course's study resources from a CSV file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from edu_dl.models import Course
from edu_dl.services.catalogue import RowsRejected, resources_import
from edu_dl.services.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Create and update a course's study resources from a CSV file with the columns title and "
        "kind, and optionally external_id, url, body, skills (skill names or external ids "
        "separated by ';', each optionally name:weight), difficulty, minutes, language and "
        "active. A row whose external_id the course has updates that resource; others create "
        "one. If any row is wrong, every problem is printed and nothing is imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The CSV file to import.")
        parser.add_argument("--course", required=True, help="The course's slug.")
        parser.add_argument(
            "--report", help="Also write the problems found to this file as line,column,reason,raw."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        slug = options["course"]
        course = Course.objects.filter(slug=slug).first()
        if course is None:
            raise CommandError(f"there is no course with slug {slug!r}")
        try:
            result = resources_import(
                course=course, path_or_handle=path, report_path=options["report"]
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
            f"{path.name} into {slug}: {result.read} read, {result.created} created, "
            f"{result.updated} updated, {result.unchanged} unchanged"
        )
