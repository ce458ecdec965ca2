"""Register an integration (an LMS, a script) as an OAuth 2 client-credentials application.

    python manage.py api_client_create --owner moodle-service --name Moodle \
        --courses algebra-demo [--shell]

The application acts as ``--owner`` (an account enrolled as teacher of the courses it serves)
and is limited to ``--courses`` (none: all of the owner's). The client secret is printed once:
it is stored hashed.
"""

from __future__ import annotations

import shlex

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import Application

from edu_dl.models import ApiClient, Course


class Command(BaseCommand):
    help = "Register an OAuth 2 client-credentials application for an integration."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--owner", required=True, help="username the client acts as")
        parser.add_argument("--name", required=True, help="e.g. the LMS's name")
        parser.add_argument("--courses", default="", help="course slugs, comma-separated")
        parser.add_argument(
            "--shell", action="store_true", help="print CLIENT_ID=... CLIENT_SECRET=... for eval"
        )

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        owner = get_user_model().objects.filter(username=options["owner"]).first()
        if owner is None or not owner.is_active:
            raise CommandError(f"no active user {options['owner']!r}")
        slugs = [slug.strip() for slug in options["courses"].split(",") if slug.strip()]
        courses = list(Course.objects.filter(slug__in=slugs))
        missing = sorted(set(slugs) - {course.slug for course in courses})
        if missing:
            raise CommandError(f"no course {missing[0]!r}")
        secret = generate_client_secret()
        application = Application.objects.create(
            name=options["name"],
            user=owner,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,
        )
        ApiClient.objects.create(application=application).courses.set(courses)
        if options["shell"]:
            self.stdout.write(
                f"CLIENT_ID={shlex.quote(application.client_id)} "
                f"CLIENT_SECRET={shlex.quote(secret)}"
            )
        else:
            self.stdout.write(f"client id:     {application.client_id}")
            self.stdout.write(f"client secret: {secret}  (shown once; stored hashed)")
            scope = ", ".join(slugs) if slugs else f"all courses of {owner.get_username()}"
            self.stdout.write(f"acts as {owner.get_username()}, limited to: {scope}")
