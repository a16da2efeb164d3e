"""Streaming writer of Mender artifacts v3, laid out as mender-artifact lays them out.

The payload is generated, hashed and compressed into a temporary file in one pass, so its
checksum is known before the header (which carries it) is written; the outer tar then copies
that file. Only the header, the manifest and one chunk are ever in memory. Every timestamp is
zero and gzip carries no mtime, so the same arguments and seed give the same bytes (except an
ECDSA signature, which is randomised).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from mendersim.artifact.compression import EXTENSIONS, check_compression, compressor
from mendersim.artifact.format import (
    DATA_PREFIX,
    FORMAT,
    MANIFEST,
    MANIFEST_SIG,
    ROOTFS_IMAGE,
    VERSION,
    VERSION_BYTES,
    VERSION_MEMBER,
    ArtifactError,
    ArtifactInfo,
    PayloadFile,
)
from mendersim.artifact.payload import payload_chunks
from mendersim.artifact.signing import EcdsaEncoding, check_signing_key, sign_manifest
from mendersim.artifact.streams import ChunkReader
from mendersim.artifact.tarstream import write_end, write_member
from mendersim.fleet.keys import PrivateKey


def _json(value: Any) -> bytes:
    """Compact JSON, as Go's encoding/json writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def type_info(update_type: str, name: str, checksum: str, depends: Mapping[str, Any]) -> dict:
    """headers/0000/type-info with the provides and clears mender-artifact adds by default.

    The type repeats header-info's, as mender-artifact writes it since 4.3.1 and checks it."""
    if update_type == ROOTFS_IMAGE:
        info: dict[str, Any] = {
            "type": ROOTFS_IMAGE,
            "artifact_provides": {
                "rootfs-image.checksum": checksum,
                "rootfs-image.version": name,
            },
            "clears_artifact_provides": [
                "artifact_group",
                "rootfs_image_checksum",
                "rootfs-image.*",
            ],
        }
    else:
        info = {
            "type": update_type,
            "artifact_provides": {f"rootfs-image.{update_type}.version": name},
            "clears_artifact_provides": [f"rootfs-image.{update_type}.*"],
        }
    if depends:
        info["artifact_depends"] = dict(depends)
    return info


class _CountingWriter:
    """Counts what goes through it on the way to `out`, for the size of the artifact."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()


def _write_data(spool: BinaryIO, comp: str, payload_name: str, size: int, seed: int) -> str:
    """Compress the data tar into `spool`; return the payload's SHA-256."""
    packer = compressor(comp, spool)
    reader = ChunkReader(payload_chunks(size, seed), hashed=True)
    write_member(packer, payload_name, reader, size, 0o644)  # type: ignore[arg-type]
    write_end(packer)
    packer.close()
    return reader.sha.hexdigest()  # type: ignore[union-attr]


def _header_bytes(comp: str, header_info: dict, sub_header: dict, rootfs: bool) -> bytes:
    members = [("header-info", _json(header_info)), ("headers/0000/type-info", _json(sub_header))]
    if rootfs:
        members.append(("headers/0000/meta-data", b""))
    buffer = io.BytesIO()
    packer = compressor(comp, buffer)
    for name, content in members:
        write_member(packer, name, content, len(content), 0o600)
    write_end(packer)
    packer.close()
    return buffer.getvalue()


def _check_name(payload_name: str) -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,")
    if not payload_name or not set(payload_name) <= allowed:
        raise ArtifactError(
            f"Payload: data file {payload_name} contains forbidden characters. Only letters, "
            'digits and characters in the set ".,_-" are allowed',
            kind="unsupported",
        )


def write_artifact(
    out: str | os.PathLike | BinaryIO,
    *,
    name: str,
    device_types: Sequence[str],
    payload_size: int = 1_048_576,
    update_type: str = ROOTFS_IMAGE,
    payload_name: str = "rootfs.img",
    compression: str = "gzip",
    sign_key: PrivateKey | None = None,
    provides: Mapping[str, str] | None = None,
    depends: Mapping[str, Any] | None = None,
    seed: int = 0,
    ecdsa_encoding: EcdsaEncoding = "raw",
) -> ArtifactInfo:
    """Write an artifact with one generated payload file; return what a reader would report.

    `provides` and `depends` go into the type-info (as `mender-artifact --provides/--depends`).
    `ecdsa_encoding="der"` writes an ECDSA signature as a hardware signer would.
    """
    comp = check_compression(compression)
    if not name:
        raise ArtifactError("artifact name must not be empty", kind="unsupported")
    if not update_type:
        raise ArtifactError("payload type must not be empty", kind="unsupported")
    if not device_types:
        raise ArtifactError("at least one device type is required", kind="unsupported")
    if payload_size < 0:
        raise ArtifactError(f"payload size must not be negative, got {payload_size}")
    _check_name(payload_name)
    if sign_key is not None:
        check_signing_key(sign_key)
    if isinstance(out, (str, os.PathLike)):
        try:
            with open(out, "wb") as handle:
                return write_artifact(
                    handle, name=name, device_types=device_types, payload_size=payload_size,
                    update_type=update_type, payload_name=payload_name, compression=compression,
                    sign_key=sign_key, provides=provides, depends=depends, seed=seed,
                    ecdsa_encoding=ecdsa_encoding,
                )  # fmt: skip
        except BaseException:
            Path(out).unlink(missing_ok=True)  # never leave a half-written artifact behind
            raise

    ext = EXTENSIONS[comp]
    with tempfile.TemporaryFile(prefix="mendersim-data-") as spool:
        payload_sha = _write_data(spool, comp, payload_name, payload_size, seed)
        data_size = spool.tell()
        spool.seek(0)

        sub_header = type_info(update_type, name, payload_sha, depends or {})
        sub_header["artifact_provides"].update(provides or {})
        header_info = {
            "payloads": [{"type": update_type}],
            "artifact_provides": {"artifact_name": name},
            "artifact_depends": {"device_type": list(device_types)},
        }
        header = _header_bytes(comp, header_info, sub_header, update_type == ROOTFS_IMAGE)
        header_name = f"header.tar{ext}"
        manifest = (
            f"{payload_sha}  {DATA_PREFIX}{payload_name}\n"
            f"{hashlib.sha256(header).hexdigest()}  {header_name}\n"
            f"{hashlib.sha256(VERSION_BYTES).hexdigest()}  {VERSION_MEMBER}\n"
        ).encode("ascii")

        counter = _CountingWriter(out)
        write_member(counter, VERSION_MEMBER, VERSION_BYTES, len(VERSION_BYTES), 0o600)
        write_member(counter, MANIFEST, manifest, len(manifest), 0o600)
        if sign_key is not None:
            signature = sign_manifest(sign_key, manifest, ecdsa_encoding=ecdsa_encoding)
            write_member(counter, MANIFEST_SIG, signature, len(signature), 0o600)
        write_member(counter, header_name, header, len(header), 0o600)
        write_member(counter, f"data/0000.tar{ext}", spool, data_size, 0o600)  # type: ignore[arg-type]
        write_end(counter)
        counter.flush()

    return ArtifactInfo(
        format=FORMAT,
        version=VERSION,
        name=name,
        update_type=update_type,
        device_types=list(device_types),
        provides={"artifact_name": name, **sub_header["artifact_provides"]},
        depends={"device_type": list(device_types), **(depends or {})},
        payload_files=[PayloadFile(name=payload_name, size=payload_size, sha256=payload_sha)],
        compression=comp,
        signed=sign_key is not None,
        signature="unsigned" if sign_key is None else "present, not checked",
        size=counter.count,
        scripts=[],
        clears_provides=list(sub_header["clears_artifact_provides"]),
    )
