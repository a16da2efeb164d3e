"""What a Mender artifact v3 is made of: member names, the result of reading one, its errors.

Shared by the writer and the reader so that both agree on every name and rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mendersim.errors import MendersimError

FORMAT = "mender"
ROOTFS_IMAGE = "rootfs-image"
VERSION = 3
# Byte-exact content of the `version` member as mender-artifact writes it.
VERSION_BYTES = b'{"format":"mender","version":3}'

MANIFEST = "manifest"
MANIFEST_SIG = "manifest.sig"
MANIFEST_AUGMENT = "manifest-augment"
VERSION_MEMBER = "version"
HEADER_RE = re.compile(r"header\.tar(\.(gz|xz|zst))?")
HEADER_AUGMENT = "header-augment.tar"
DATA_RE = re.compile(r"data/(\d{4})\.tar(\.(gz|xz|zst))?")
DATA_PREFIX = "data/0000/"


class ArtifactError(MendersimError):
    """A defect in an artifact; the message is the one a real Mender client would log.

    `kind` is a short, low-cardinality name ("checksum", "signature", "device_type", "format",
    "compression", "truncated", "unsupported") that statistics and failure logs can count.
    The command line exits 1 on a defective artifact, as `mender-artifact validate` does.
    """

    exit_code = 1

    def __init__(self, message: str, *, kind: str = "format", member: str | None = None) -> None:
        super().__init__(f"{message} ({member})" if member else message)
        self.kind = kind
        self.member = member


@dataclass(slots=True)
class PayloadFile:
    name: str
    size: int
    sha256: str


@dataclass(slots=True)
class AugmentInfo:
    """What header-augment overrides (mender-artifact's augmented header; not signed)."""

    update_type: str
    provides: dict[str, Any]
    depends: dict[str, Any]
    clears_provides: list[str] | None
    meta_data: dict[str, Any]
    files: list[str]  # payload files listed in manifest-augment


@dataclass(slots=True)
class ArtifactInfo:
    format: str
    version: int
    name: str
    update_type: str | None
    device_types: list[str]
    provides: dict[str, str]
    depends: dict[str, Any]
    payload_files: list[PayloadFile] = field(default_factory=list)
    compression: str = "gzip"
    signed: bool = False
    signature: str = "unsigned"
    size: int = 0
    scripts: list[str] = field(default_factory=list)
    clears_provides: list[str] = field(default_factory=list)  # type-info's clears_artifact_provides
    meta_data: dict[str, Any] = field(default_factory=dict)  # headers/0000/meta-data, merged
    augment: AugmentInfo | None = None
