"""Fixtures shared by the whole suite."""

from __future__ import annotations

import socket

import pytest
from django.conf import settings


@pytest.fixture(autouse=True)
def artifact_storage_in_tmp(tmp_path, settings):
    """Each test writes model artifacts to its own folder."""
    storages = dict(settings.STORAGES)
    storages["edu_dl_artifacts"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "artifacts")},
    }
    settings.STORAGES = storages
    yield tmp_path / "artifacts"


@pytest.fixture(autouse=True)
def fresh_model_cache():
    from edu_dl.services.model_versions import active_model_cache_clear

    active_model_cache_clear()
    yield
    active_model_cache_clear()


@pytest.fixture
def sent(monkeypatch):
    """Messages sent to the broker, as (task name, args), instead of sending them (the real
    broker is exercised by the integration tests)."""
    from celery import current_app

    messages = []

    class Result:
        id = "task-id"

    def send_task(name, args=None, **options):
        messages.append((name, args))
        return Result()

    monkeypatch.setattr(current_app, "send_task", send_task)
    return messages


# A public address (example.com's, once) that names under example.com / .org / .net resolve to in
# the tests: webhooks reach only public addresses, and the tests never use real DNS.
PUBLIC_TEST_ADDRESS = "93.184.216.34"
PUBLIC_TEST_DOMAINS = ("example.com", "example.org", "example.net")
UNRESOLVED_TEST_DOMAINS = ("test", "invalid")


def _under(name: str, domains: tuple[str, ...]) -> bool:
    return any(name == domain or name.endswith("." + domain) for domain in domains)


class FakeDns:
    """``socket.getaddrinfo`` for the names the tests make up (RFC 2606 / 6761 domains).

    ``names`` maps a name to the addresses it resolves to: change it in a test to move a name
    (DNS rebinding). A name under example.com, .org or .net that it does not hold resolves to
    :data:`PUBLIC_TEST_ADDRESS`; one under .test or .invalid does not resolve. IP addresses and
    every other name (localhost, the database's host) go to the real resolver. ``lookups``
    lists the made-up names looked up, in order.
    """

    public_address = PUBLIC_TEST_ADDRESS

    def __init__(self, real_getaddrinfo):
        self.names: dict[str, list[str]] = {}
        self.lookups: list[str] = []
        self._real_getaddrinfo = real_getaddrinfo

    def getaddrinfo(self, host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        public = isinstance(name, str) and _under(name, PUBLIC_TEST_DOMAINS)
        if not (name in self.names or public or _under(str(name), UNRESOLVED_TEST_DOMAINS)):
            return self._real_getaddrinfo(host, port, *args, **kwargs)
        self.lookups.append(name)
        addresses = self.names.get(name, [PUBLIC_TEST_ADDRESS] if public else [])
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            found
            for address in addresses
            for found in self._real_getaddrinfo(address, port, *args, **kwargs)
        ]


@pytest.fixture
def fake_dns(monkeypatch):
    """Made-up host names resolve without the network (:class:`FakeDns`); returns the fake."""
    fake = FakeDns(socket.getaddrinfo)
    # socket's own attribute, which edu_dl.services.webhooks (and socket.create_connection) call.
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


def uses_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_sessionfinish(session, exitstatus):
    """Remove this run's filesystem-broker folder (kept under the system's temporary folder)."""
    import shutil
    import tempfile
    from pathlib import Path

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    folder = options.get("data_folder_in")
    if folder and Path(folder).parent.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(Path(folder).parent, ignore_errors=True)
