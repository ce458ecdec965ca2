"""The production packaging: docker-compose.yml and the Dockerfile start entry points that exist,
give every process the configuration the settings read, and pass Django's deployment checks.

No Docker engine runs the suite, so the files are parsed and each entry point is resolved the way
its program resolves it (gunicorn's ``import_app``, Celery's ``find_app``, Django's command list).
"""

from __future__ import annotations

import ast
import json
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from celery.app.utils import find_app
from django.core.management import get_commands
from django.urls import resolve
from gunicorn.util import import_app

from edu_dl.tasks.queues import QUEUES

REPOSITORY = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPOSITORY / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]

# Services that run this project's code (the image built from this repository).
APP_SERVICES = ("migrate", "web", "worker-grading", "worker-training", "beat")
ONE_SHOT_SERVICES = ("migrate",)
ARTIFACT_DIR = "/data/artifacts"
# What a production process needs from its environment (see lms_site/settings/base.py).
PRODUCTION_ENVIRONMENT = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "EDU_DL_ARTIFACT_DIR",
    "EDU_DL_DEVICE",
)
SETTINGS_ENVIRONMENT_READERS = {"env_str", "env_bool", "env_list", "database_from_env"}


def _commands(service: dict) -> list[list[str]]:
    """The programs a service runs, each as its argv; ``sh -c "a && b"`` gives two."""
    command = service["command"]
    assert isinstance(command, list), "commands are written in exec form (a list)"
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def _option(argv: list[str], name: str) -> str:
    """The value that follows option ``name`` in ``argv``."""
    return argv[argv.index(name) + 1]


def _celery_commands() -> dict[str, list[str]]:
    return {
        name: argv
        for name in APP_SERVICES
        for argv in _commands(SERVICES[name])
        if argv[0] == "celery"
    }


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs of the Dockerfile, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (REPOSITORY / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _dockerfile_values(keyword: str) -> list[str]:
    return [arguments for found, arguments in _dockerfile_instructions() if found == keyword]


def _environment_variables_read_by_settings() -> set[str]:
    """Names passed to the ``env_*`` readers anywhere in ``lms_site/settings``."""
    names: set[str] = set()
    for path in (REPOSITORY / "lms_site" / "settings").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in SETTINGS_ENVIRONMENT_READERS
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(node.args[0].value)
    return names


def _python_healthcheck_code(healthcheck_test: list[str]) -> str:
    assert healthcheck_test[:3] == ["CMD", "python", "-c"]
    return healthcheck_test[3]


def test_compose_declares_the_production_services():
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "migrate",
        "web",
        "worker-grading",
        "worker-training",
        "beat",
    }


def test_every_service_running_our_code_uses_the_image_built_from_this_repository():
    images = {SERVICES[name]["image"] for name in APP_SERVICES}
    contexts = {SERVICES[name]["build"]["context"] for name in APP_SERVICES}

    assert images == {"${EDU_DL_IMAGE:-edu-dl:latest}"}
    assert contexts == {"."}


def test_celery_commands_load_the_site_celery_app():
    import lms_site.celery

    commands = _celery_commands()

    assert set(commands) == {"worker-grading", "worker-training", "beat"}
    for argv in commands.values():
        assert find_app(_option(argv, "-A")) is lms_site.celery.app


def test_workers_consume_only_declared_queues_and_every_queue_has_a_worker():
    queues_by_service = {
        name: _option(argv, "-Q").split(",")
        for name, argv in _celery_commands().items()
        if argv[3] == "worker"
    }

    assert queues_by_service == {
        "worker-grading": ["grading", "default"],
        "worker-training": ["training"],
    }
    consumed = [queue for queues in queues_by_service.values() for queue in queues]
    assert sorted(consumed) == sorted(QUEUES)


def test_worker_commands_match_their_workload():
    grading = _commands(SERVICES["worker-grading"])[0]
    training = _commands(SERVICES["worker-training"])[0]

    assert grading == [
        "celery", "-A", "lms_site", "worker", "-Q", "grading,default",
        "-c", "4", "--hostname", "grading@%h",
    ]  # fmt: skip
    assert training == [
        "celery", "-A", "lms_site", "worker", "-Q", "training",
        "-c", "1", "--prefetch-multiplier", "1", "--hostname", "training@%h",
    ]  # fmt: skip


def test_worker_healthchecks_ping_their_own_worker():
    for name in ("worker-grading", "worker-training"):
        node_prefix = _option(_commands(SERVICES[name])[0], "--hostname").split("@")[0]
        test = SERVICES[name]["healthcheck"]["test"]

        assert test == [
            "CMD-SHELL",
            f"celery -A lms_site inspect ping --destination {node_prefix}@$$HOSTNAME --timeout 10",
        ]


# Loading the WSGI application builds WhiteNoise, which warns that static files are not collected:
# the image collects them at build time, the test suite never does.
@pytest.mark.filterwarnings("ignore:No directory at:UserWarning")
def test_gunicorn_commands_name_the_site_wsgi_application():
    import lms_site.wsgi

    web = _commands(SERVICES["web"])[0]
    dockerfile_command = json.loads(_dockerfile_values("CMD")[-1])

    assert web[:2] == ["gunicorn", "lms_site.wsgi:application"]
    assert _option(web, "--bind") == "0.0.0.0:8000"
    assert _option(web, "--workers") == "${WEB_CONCURRENCY:-3}"
    assert dockerfile_command[:2] == ["gunicorn", "lms_site.wsgi:application"]
    assert _option(dockerfile_command, "--bind") == "0.0.0.0:8000"
    assert import_app(web[1]) is lms_site.wsgi.application


def test_manage_py_commands_are_real_management_commands():
    manage_py = [
        argv for name in APP_SERVICES for argv in _commands(SERVICES[name]) if argv[0] == "python"
    ]

    assert manage_py == [
        ["python", "manage.py", "migrate", "--noinput"],
        ["python", "manage.py", "check", "--deploy"],
    ]
    available = get_commands()
    for argv in manage_py:
        assert argv[2] in available


def test_beat_keeps_its_schedule_in_a_volume():
    beat = _commands(SERVICES["beat"])[0]

    assert beat == [
        "celery", "-A", "lms_site", "beat", "--schedule", "/data/beat/celerybeat-schedule",
    ]  # fmt: skip
    assert SERVICES["beat"]["volumes"] == ["beat-schedule:/data/beat"]


def test_every_service_has_a_healthcheck_or_is_one_shot():
    for name, service in SERVICES.items():
        if name in ONE_SHOT_SERVICES:
            assert service["restart"] == "no"
            assert service["healthcheck"] == {"disable": True}
        else:
            assert service["restart"] == "unless-stopped"
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
            assert "disable" not in service["healthcheck"]


def test_dependencies_wait_for_health_or_for_completion():
    for name, service in SERVICES.items():
        for dependency, rule in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully"
                if dependency in ONE_SHOT_SERVICES
                else "service_healthy"
            )
            assert rule == {"condition": expected}, f"{name} -> {dependency}"
    for name in ("web", "worker-grading", "worker-training", "beat"):
        assert set(SERVICES[name]["depends_on"]) == {"postgres", "redis", "migrate"}
    assert set(SERVICES["migrate"]["depends_on"]) == {"postgres"}


def test_python_healthchecks_are_valid_python():
    for name in ("web", "beat"):
        code = _python_healthcheck_code(SERVICES[name]["healthcheck"]["test"])

        compile(code, f"<{name} healthcheck>", "exec")


def test_web_healthchecks_probe_the_healthz_url():
    compose_code = _python_healthcheck_code(SERVICES["web"]["healthcheck"]["test"])
    dockerfile_healthcheck = _dockerfile_values("HEALTHCHECK")[-1]
    dockerfile_code = _python_healthcheck_code(
        ["CMD", *json.loads(dockerfile_healthcheck.partition(" CMD ")[2])]
    )

    assert "r.Request('http://127.0.0.1:8000/healthz'," in compose_code
    assert dockerfile_code == compose_code
    assert resolve("/healthz").view_name == "edu_dl:healthz"


def test_referenced_volumes_are_declared():
    declared = set(COMPOSE["volumes"])
    referenced = {
        mount.split(":")[0]
        for service in SERVICES.values()
        for mount in service.get("volumes", [])
        if not mount.startswith((".", "/", "~"))
    }

    assert referenced == declared == {"postgres-data", "redis-data", "artifacts", "beat-schedule"}


def test_web_and_workers_share_the_artifacts_volume_at_the_artifact_dir():
    for name in ("web", "worker-grading", "worker-training"):
        service = SERVICES[name]

        assert f"artifacts:{ARTIFACT_DIR}" in service["volumes"]
        assert service["environment"]["EDU_DL_ARTIFACT_DIR"] == ARTIFACT_DIR


def test_settings_read_every_environment_variable_compose_provides():
    read_by_settings = _environment_variables_read_by_settings()

    assert set(PRODUCTION_ENVIRONMENT) <= read_by_settings
    for name in APP_SERVICES:
        provided = set(SERVICES[name]["environment"])
        assert provided - read_by_settings == set(), name


def test_every_service_running_our_code_gets_the_production_environment():
    for name in APP_SERVICES:
        environment = SERVICES[name]["environment"]

        assert set(PRODUCTION_ENVIRONMENT) <= set(environment), name
        assert environment["DJANGO_SECRET_KEY"] == "${DJANGO_SECRET_KEY:?set it}"
        assert environment["DJANGO_ALLOWED_HOSTS"] == "${DJANGO_ALLOWED_HOSTS:?set it}"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["DATABASE_URL"].endswith("@postgres:5432/${POSTGRES_DB:-edu_dl}")
        assert environment["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert environment["REDIS_URL"] == "redis://redis:6379/1"
    assert SERVICES["worker-training"]["environment"]["EDU_DL_DEVICE"] == (
        "${EDU_DL_TRAINING_DEVICE:-cpu}"
    )


def test_dockerfile_builds_a_non_root_production_image():
    environment = " ".join(_dockerfile_values("ENV"))

    assert _dockerfile_values("FROM") == ["python:3.11-slim"]
    assert _dockerfile_values("USER") == ["app:app"]
    assert _dockerfile_values("EXPOSE") == ["8000"]
    assert "DJANGO_SETTINGS_MODULE=lms_site.settings.production" in environment
    assert _dockerfile_values("ARG") == [
        "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu",
        "EXTRAS=encoder",
    ]
    assert any(
        '--extra-index-url "$TORCH_INDEX_URL"' in arguments
        for arguments in _dockerfile_values("RUN")
    )
    assert any(
        "python manage.py collectstatic --noinput" in arguments
        for arguments in _dockerfile_values("RUN")
    )


def test_check_deploy_with_production_settings_reports_no_issues(tmp_path):
    environment = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "lms_site.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),  # 64 characters
        "DJANGO_ALLOWED_HOSTS": "example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "EDU_DL_VAR_DIR": str(tmp_path / "var"),
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "System check identified no issues (0 silenced).\n"
