"""Model artifacts: written through Django storage, read back only when their sha256 matches."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from edu_dl.conf import edu_settings
from edu_dl.models import ModelVersion
from edu_dl.services.errors import ApplicationError

logger = logging.getLogger(__name__)


class ArtifactIntegrityError(ApplicationError):
    """An artifact is missing, or its bytes do not match the recorded size and checksum."""

    status_code = 409


@dataclass(frozen=True)
class StoredArtifact:
    path: str
    sha256: str
    size: int


def artifact_storage() -> Storage:
    return storages[edu_settings.ARTIFACT_STORAGE]


def artifact_write(*, name: str, data: bytes) -> StoredArtifact:
    """Store ``data`` under ``name`` (the storage may pick a free name) with its checksum."""
    storage = artifact_storage()
    path = storage.save(name, ContentFile(data))
    return StoredArtifact(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def artifact_read_verified(*, version: ModelVersion) -> bytes:
    """The artifact's bytes, refused (and logged) if they are not the ones that were recorded."""
    storage = artifact_storage()
    try:
        with storage.open(version.artifact_path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, OSError) as error:
        logger.error("artifact of %s is missing at %s: %s", version, version.artifact_path, error)
        raise ArtifactIntegrityError(
            f"the artifact of {version} is missing ({version.artifact_path})"
        ) from error
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != version.artifact_size or digest != version.artifact_sha256:
        logger.error(
            "artifact of %s refused: sha256 %s (%d bytes), recorded %s (%d bytes)",
            version,
            digest,
            len(data),
            version.artifact_sha256,
            version.artifact_size,
        )
        raise ArtifactIntegrityError(
            f"the artifact of {version} does not match its recorded checksum; it was not loaded"
        )
    return data
