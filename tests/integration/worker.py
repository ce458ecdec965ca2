"""A real ``celery worker`` subprocess on the test database and broker: used by the
integration tests (through the fixture in conftest.py) and by benchmarks/bench_grading.py."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from edu_dl.tasks.queues import QUEUES

REPOSITORY = Path(__file__).resolve().parents[2]


def database_url_of_test_database() -> str:
    """The URL of the database this test run created, for the worker process to use."""
    config = connection.settings_dict
    if config["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(config['NAME']).resolve()}"
    user = quote(config.get("USER") or "")
    password = f":{quote(config['PASSWORD'])}" if config.get("PASSWORD") else ""
    credentials = f"{user}{password}@" if user else ""
    host = config.get("HOST") or "localhost"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{config['NAME']}"


def broker_folder() -> str:
    """The suite's filesystem-broker folder ('' when the broker is a server such as Redis)."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    folder = options.get("data_folder_in")
    return str(Path(folder).parent) if folder else ""


def purge_queues() -> None:
    from celery import current_app

    with current_app.connection_for_write() as broker:
        for queue in QUEUES:
            # A queue that was never declared has nothing to purge.
            with contextlib.suppress(Exception):
                broker.default_channel.queue_purge(queue)


class WorkerProcess:
    """Starts, reads and stops one worker; subclasses watch its log lines in :meth:`on_line`."""

    def __init__(
        self,
        artifact_dir: Path,
        extra_env: dict[str, str] | None = None,
        *,
        queues: tuple[str, ...] = QUEUES,
        concurrency: int = 1,
        threads: int = 1,
        name: str = "test",
    ):
        self.artifact_dir = artifact_dir
        self.extra_env = extra_env or {}
        self.queues = queues
        self.concurrency = concurrency
        self.threads = threads
        self.name = name
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        self.ready = threading.Event()

    def start(self, timeout: float = 90) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "lms_site.settings.test",
            "DATABASE_URL": database_url_of_test_database(),
            "EDU_DL_ARTIFACT_DIR": str(self.artifact_dir),
            "EDU_DL_TORCH_THREADS": str(self.threads),
            "EDU_DL_TEST_BROKER_DIR": broker_folder(),
            **self.extra_env,
        }
        command = [
            sys.executable, "-m", "celery", "-A", "lms_site", "worker",
            "-Q", ",".join(self.queues), "-c", str(self.concurrency), "--prefetch-multiplier", "1",
            "--without-mingle", "--without-gossip", "-n", f"{self.name}-{os.getpid()}@%h",
            "-l", "info",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=REPOSITORY,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: the pool children die with it
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(timeout):
            self.stop()
            raise RuntimeError("the worker did not start:\n" + "".join(self.output[-60:]))

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if " ready." in line:
                self.ready.set()
            self.on_line(line)

    def on_line(self, line: str) -> None:
        """Called for each line the worker logs (nothing by default)."""

    def kill(self) -> None:
        """Kill the worker and its pool at once, as a crash or an OOM kill would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return "".join(self.output)
