"""``manage.py load_demo``: build the demo school from the public-data samples in the package."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from edu_dl.services.demo import DemoPasswords, demo_load

# Known passwords for a local demo; each can be replaced through its environment variable.
DEFAULT_PASSWORDS = {
    "EDU_DL_DEMO_ADMIN_PASSWORD": "demo-admin",
    "EDU_DL_DEMO_TEACHER_PASSWORD": "demo-teacher",
    "EDU_DL_DEMO_ASSISTANT_PASSWORD": "demo-assistant",
    "EDU_DL_DEMO_STUDENT_PASSWORD": "demo-student",
}


def _password(variable: str) -> str:
    return os.environ.get(variable) or DEFAULT_PASSWORDS[variable]


class Command(BaseCommand):
    help = (
        "Build the demo school (ASSISTments 2009 and ASAP-SAS samples): two courses, staff, "
        "240 students, their answer histories and graded answers, and a study catalogue. "
        "Running it again creates nothing twice. For demo sites only: it sets known passwords "
        "(override with EDU_DL_DEMO_ADMIN_PASSWORD, EDU_DL_DEMO_TEACHER_PASSWORD, "
        "EDU_DL_DEMO_ASSISTANT_PASSWORD, EDU_DL_DEMO_STUDENT_PASSWORD)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-training",
            action="store_true",
            help="Do not ask for a knowledge-tracing training run for the mathematics course.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        passwords = DemoPasswords(
            admin=_password("EDU_DL_DEMO_ADMIN_PASSWORD"),
            teacher=_password("EDU_DL_DEMO_TEACHER_PASSWORD"),
            assistant=_password("EDU_DL_DEMO_ASSISTANT_PASSWORD"),
            student=_password("EDU_DL_DEMO_STUDENT_PASSWORD"),
        )
        result = demo_load(passwords=passwords, request_training=not options["no_training"])
        created = ", ".join(
            f"{count} {name.replace('_', ' ')}" for name, count in result.created.items()
        )
        self.stdout.write(f"Demo courses: {result.math_course.slug}, {result.science_course.slug}")
        self.stdout.write(f"Created: {created}")
        run = result.training_run
        if run is not None:
            self.stdout.write(f"Knowledge-tracing training run #{run.pk}: {run.status}")
        elif not options["no_training"]:
            self.stdout.write("Knowledge tracing: the course already has an active model")
        if result.grader_run is not None:
            self.stdout.write(f"Short-answer grader training run #{result.grader_run.pk}: queued")
        self.stdout.write(self.style.SUCCESS("Logins (demo passwords):"))
        for login in result.logins:
            self.stdout.write(
                f"  {login.role:<10} {login.username:<16} {login.password:<16} at {login.path}"
            )
