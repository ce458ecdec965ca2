"""``manage.py import_interactions``: import an answer history file into a course."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from edu_dl.models import Course
from edu_dl.services.errors import ApplicationError
from edu_dl.services.importing import FORMATS, interactions_import


class Command(BaseCommand):
    help = (
        "Import students' answers into a course from a csv file (student,item,skills,correct,"
        "timestamp[,attempt,duration_s]; skills separated by ';'), an akt fold file (3 or 4 "
        "lines per student) or a dkt builder file (.gz files are read compressed). Students, "
        "items and skills the course lacks are created; importing the same answers again adds "
        "nothing. A bad row stops the import and nothing is imported, unless --skip-invalid is "
        "given: then the valid rows are imported and the bad ones written to a report."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The file to import.")
        parser.add_argument("--course", required=True, help="The course's slug.")
        parser.add_argument("--format", required=True, choices=FORMATS, help="The file's format.")
        parser.add_argument(
            "--akt-lines",
            type=int,
            choices=(3, 4),
            help="Lines per student in an akt file (default: judged from the file).",
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid rows and write the invalid ones to the report.",
        )
        parser.add_argument(
            "--report",
            help="Where --skip-invalid writes the rejected rows as line,reason,raw "
            "(default: <file name>.rejected.csv in the current folder).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        slug = options["course"]
        if options["akt_lines"] is not None and options["format"] != "akt":
            raise CommandError("--akt-lines applies to --format akt only")
        if options["report"] and not options["skip_invalid"]:
            raise CommandError("--report needs --skip-invalid (without it a bad row stops all)")
        course = Course.objects.filter(slug=slug).first()
        if course is None:
            raise CommandError(f"there is no course with slug {slug!r}")
        report = None
        if options["skip_invalid"]:
            report = Path(options["report"] or f"{path.name}.rejected.csv")
        try:
            result = interactions_import(
                course=course,
                path_or_handle=path,
                format=options["format"],
                akt_lines=options["akt_lines"],
                skip_invalid=options["skip_invalid"],
                report_path=report,
            )
        except ApplicationError as error:
            raise CommandError(f"{path}: {error.message}; nothing was imported") from error
        summary = (
            f"{path.name} into {slug}: {result.read} read, {result.imported} imported, "
            f"{result.already_present} already present, {result.rejected} rejected; created "
            f"{result.students_created} students, {result.items_created} items, "
            f"{result.skills_created} skills"
        )
        if report is not None:
            summary += f"; rejected rows in {report}"
        self.stdout.write(summary)
