"""The README's worked API example, run line by line with curl against a live server."""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from edu_dl.models import Enrollment, Resource
from tests.factories import CourseFactory, EnrollmentFactory, SkillFactory, UserFactory

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def example_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    example = next(block for block in blocks if block.startswith("# api-example"))
    return [line for line in example.splitlines()[1:] if line.strip()]


def test_the_readme_example_runs_against_a_live_server(live_server):
    course = CourseFactory(slug="algebra-demo", title="Algebra")
    SkillFactory(course=course, name="Fractions")
    EnrollmentFactory(
        course=course, user=UserFactory(username="moodle-service"), role=Enrollment.Role.TEACHER
    )
    EnrollmentFactory(course=course, user=UserFactory(username="a09-70679"))
    script = []
    for line in example_lines():
        if line.startswith("BASE="):
            script.append(f"BASE={shlex.quote(live_server.url)}")
        elif line.startswith("eval "):
            # The administrator's step runs in this process (the test database is here).
            command = shlex.split(re.search(r'"\$\((.*)\)"', line).group(1))
            assert command[:3] == ["python", "manage.py", "api_client_create"]
            out = io.StringIO()
            call_command(*command[2:], stdout=out)
            script.append(out.getvalue().strip())
        else:
            script.append(line)
            if line.startswith("curl "):
                script.append("echo")

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    courses, progress, resource = (json.loads(out) for out in result.stdout.splitlines())
    assert [c["slug"] for c in courses["results"]] == ["algebra-demo"]
    assert [skill["skill_name"] for skill in progress["skills"]] == ["Fractions"]
    assert resource["title"] == "Fractions in pictures"
    assert Resource.objects.filter(course=course, title="Fractions in pictures").exists()
