"""Single-pass, streaming reader and verifier of Mender artifacts v3.

The artifact is read once, front to back, from a file or from the chunks of a download: nothing
is buffered beyond a tar block and the small JSON members, so memory stays flat whatever the
payload size. Each check happens as early as a real client makes it (signature before the
header, device type before the payload), with the message such a client logs.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from mendersim.artifact import compression
from mendersim.artifact.augment import Combined
from mendersim.artifact.format import (
    DATA_PREFIX,
    DATA_RE,
    FORMAT,
    HEADER_AUGMENT,
    HEADER_RE,
    MANIFEST,
    MANIFEST_AUGMENT,
    MANIFEST_SIG,
    VERSION,
    VERSION_MEMBER,
    ArtifactError,
    ArtifactInfo,
    AugmentInfo,
    PayloadFile,
)
from mendersim.artifact.signing import verify_manifest
from mendersim.artifact.streams import DRAIN_SIZE, ChunkReader
from mendersim.fleet.keys import PublicKey

__all__ = ["ArtifactError", "ArtifactInfo", "PayloadFile", "read_artifact"]

# JSON members and the manifest are small; a bound keeps a hostile artifact from filling memory.
_MAX_SMALL_MEMBER = 1 << 20
_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  (\S+)")
# What tarfile and the decompressors say when the stream stops early.
_CUT_WORDS = ("unexpected end", "truncated", "empty file", "ended before")
_SUB_HEADER_RE = re.compile(r"headers/(\d{4})/(type-info|meta-data)")


def _mismatch(expected: str, calculated: str, member: str) -> ArtifactError:
    what = "version file" if member == VERSION_MEMBER else "the read byte-stream"
    return ArtifactError(
        f"The checksum of {what} does not match the expected checksum, "
        f"(expected): {expected} (calculated): {calculated}",
        kind="checksum",
        member=member,
    )


def _read_small(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if member.size > _MAX_SMALL_MEMBER:
        raise ArtifactError(f"{member.name} is too large ({member.size} bytes)", member=member.name)
    handle = tar.extractfile(member)
    if handle is None:
        raise ArtifactError("expected a regular file", member=member.name)
    return handle.read()


def _load_json(data: bytes, member: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"invalid JSON: {exc}", member=member) from None
    if not isinstance(value, dict):
        raise ArtifactError("expected a JSON object", member=member)
    return value


def _parse_version(data: bytes) -> None:
    value = _load_json(data, VERSION_MEMBER)
    version = value.get("version")
    if version != VERSION:
        raise ArtifactError(
            f"Failed to parse the version: Only version {VERSION} is supported, "
            f"received version {version}",
            kind="unsupported",
        )
    if value.get("format") != FORMAT:
        raise ArtifactError(
            "Failed to parse the version: The client only understands the 'mender' Artifact "
            f"type. Got format: {value.get('format')}",
        )


def _parse_manifest(data: bytes) -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        match = _MANIFEST_LINE.fullmatch(line)
        if match is None:
            raise ArtifactError(
                f"Failed to parse the manifest: Line ({line}) is not in the expected manifest "
                "format"
            )
        entries[match.group(2)] = match.group(1)
    return entries


# mender-artifact 4.3.1+ (handlers/rootfs_image.go, module_image.go: ReadHeader), word for word.
TYPE_INFO_MISMATCH = (
    "Type in type-info header does not match header-info: Corrupt Artifact. This is a known bug "
    "in some versions of mender-artifact prior to 4.3.1. Please recreate the artifact with "
    "version 4.3.1 or newer."
)


def _structure(path: list[str]) -> ArtifactError:
    """mender-artifact's refusal of members out of the v3 grammar (areader verifyParseOrder)."""
    return ArtifactError(f"Invalid structure: [{' '.join(path)}], wrong element: {path[-1]}")


class _Header:
    """What header.tar.<ext> (or header-augment.tar.<ext>) says: header-info, scripts,
    type-info and meta-data."""

    def __init__(self, augmented: bool = False) -> None:
        self.augmented = augmented
        self.info: dict[str, Any] = {}
        self.type_info: dict[str, Any] = {}
        self.meta_data: dict[str, Any] = {}
        self.scripts: list[str] = []

    def read(self, tar: tarfile.TarFile) -> None:
        members = iter(tar)
        first = next(members, None)
        if first is None or first.name != "header-info":
            got = first.name if first else "EOF"
            raise ArtifactError(
                f"Failed to parse the header: Got unexpected token: '{got}' expected 'header-info'"
            )
        self.info = _load_json(_read_small(tar, first), "header-info")
        sub_headers: set[str] = set()
        for member in members:
            if self.augmented and member.name.startswith("scripts/"):
                raise ArtifactError(
                    "reader: error getting header Payload number: invalid header path "
                    f'"{member.name}"'
                )
            if member.name.startswith("scripts/") and not sub_headers:
                self.scripts.append(member.name.removeprefix("scripts/"))
                continue
            match = _SUB_HEADER_RE.fullmatch(member.name)
            if match is None:
                raise ArtifactError(f"Failed to parse the header: Unexpected entry: {member.name}")
            if match.group(1) != "0000":
                raise ArtifactError(
                    "Failed to parse the header: Multiple header entries found. "
                    "Currently only one is supported"
                )
            sub_headers.add(match.group(2))
            content = _read_small(tar, member)
            if match.group(2) == "type-info":
                self.type_info = _load_json(content, member.name)
            elif content.strip():
                self.meta_data = _load_json(content, member.name)
        if "type-info" not in sub_headers:
            raise ArtifactError(
                "Failed to parse the header: Header's type-info files number not equal to "
                "payloads number"
            )

    def update_type(self) -> str | None:
        payloads = self.info.get("payloads")
        if not isinstance(payloads, list) or len(payloads) != 1:
            count = len(payloads) if isinstance(payloads, list) else 0
            raise ArtifactError(
                "Failed to parse the header: Unsupported number of payloads defined in header: "
                f"{count}"
            )
        declared = payloads[0].get("type") if isinstance(payloads[0], dict) else None
        if self.augmented and declared is None:
            raise ArtifactError("Empty payload can not have augmented header", member="header-info")
        if declared and self.type_info.get("type") != declared:
            raise ArtifactError(TYPE_INFO_MISMATCH, member="headers/0000/type-info")
        return declared or self.type_info.get("type") or None

    def device_types(self) -> list[str]:
        depends = self.info.get("artifact_depends")
        device_types = depends.get("device_type") if isinstance(depends, dict) else None
        if not isinstance(device_types, list) or not all(isinstance(d, str) for d in device_types):
            raise ArtifactError(
                "Failed to parse the header: artifact_depends.device_type must be a list of "
                "strings",
                member="header-info",
            )
        return device_types

    def name(self) -> str:
        provides = self.info.get("artifact_provides")
        name = provides.get("artifact_name") if isinstance(provides, dict) else None
        if not isinstance(name, str) or not name:
            raise ArtifactError(
                "Failed to parse the header: artifact_provides.artifact_name is missing",
                member="header-info",
            )
        return name

    def provides(self, payload: Combined) -> dict[str, str]:
        merged = dict(self.info.get("artifact_provides") or {})
        merged.update(payload.provides)
        return {key: str(value) for key, value in merged.items()}

    def depends(self, payload: Combined) -> dict[str, Any]:
        merged = dict(self.info.get("artifact_depends") or {})
        merged.update(payload.depends)
        return merged


class _Reading:
    """State of one pass over an artifact."""

    def __init__(
        self,
        source: ChunkReader,
        verify_key: PublicKey | None,
        device_type: str | None,
        require_signature: bool,
        accept_augmented: bool,
    ) -> None:
        self.source = source
        self.accept_augmented = accept_augmented
        self.verify_key = verify_key
        self.device_type = device_type
        self.require_signature = require_signature or verify_key is not None
        self.manifest: dict[str, str] = {}
        self.seen: set[str] = set()
        self.augment_files: list[str] | None = None  # manifest-augment's payload files
        self.path: list[str] = []  # top-level members read after `version`

    def run(self) -> ArtifactInfo:
        with tarfile.open(fileobj=self.source, mode="r|") as outer:  # type: ignore[call-overload]
            info = self._read(outer)
        self.source.drain()
        info.size = self.source.count
        return info

    def _read(self, outer: tarfile.TarFile) -> ArtifactInfo:
        members = iter(outer)
        version = self._expect(members, VERSION_MEMBER)
        version_bytes = _read_small(outer, version)
        _parse_version(version_bytes)
        self.path.clear()  # mender-artifact's parse path starts after `version`
        manifest_member = self._expect(members, MANIFEST)
        manifest_bytes = _read_small(outer, manifest_member)
        self.manifest = _parse_manifest(manifest_bytes)

        member = self._next(members)
        signature = self._signature(outer, member, manifest_bytes)
        if signature != "unsigned":
            member = self._next(members)
        self._check(VERSION_MEMBER, hashlib.sha256(version_bytes).hexdigest())
        if member is not None and member.name == MANIFEST_AUGMENT:
            self._augment_manifest(outer, member)
            member = self._next(members)

        if member is None or not HEADER_RE.fullmatch(member.name):
            got = member.name if member else "EOF"
            if self.accept_augmented and got.startswith(HEADER_AUGMENT):
                raise _structure(self.path)
            raise ArtifactError(f"Got unexpected token {got} expected 'Header'")
        header, header_compression = self._header(outer, member, _Header())
        augment = None
        if self.augment_files is not None:
            augment = self._augment_header(outer, members, member.name)
        name = header.name()
        update_type = header.update_type()
        augment_type = augment.update_type() if augment else None
        payload = Combined(
            header.type_info,
            header.meta_data,
            augment_type,
            augment.type_info if augment else None,
            augment.meta_data if augment else None,
        )
        device_types = header.device_types()
        if self.device_type is not None and self.device_type not in device_types:
            raise ArtifactError(
                "Artifact device type doesn't match",
                kind="device_type",
                member=f"device {self.device_type!r}, artifact for {', '.join(device_types)}",
            )
        files = self._payloads(outer, members)
        if update_type is None and files:
            raise ArtifactError("Empty Payload Artifacts cannot have a payload")
        missing = sorted(set(self.manifest) - self.seen)
        if missing:
            raise ArtifactError(
                f"manifest lists files missing from the artifact: {', '.join(missing)}",
                kind="checksum",
            )
        return ArtifactInfo(
            format=FORMAT,
            version=VERSION,
            name=name,
            update_type=augment_type or update_type,
            device_types=device_types,
            provides=header.provides(payload),
            depends=header.depends(payload),
            payload_files=files,
            compression=header_compression,
            signed=signature != "unsigned",
            signature=signature,
            scripts=header.scripts,
            clears_provides=payload.clears,
            meta_data=payload.meta_data,
            augment=None if augment is None else self._augment_info(augment),
        )

    def _augment_info(self, augment: _Header) -> AugmentInfo:
        clears = augment.type_info.get("clears_artifact_provides")
        return AugmentInfo(
            update_type=augment.update_type() or "",
            provides=dict(augment.type_info.get("artifact_provides") or {}),
            depends=dict(augment.type_info.get("artifact_depends") or {}),
            clears_provides=[str(c) for c in clears] if isinstance(clears, list) else None,
            meta_data=augment.meta_data,
            files=[f.removeprefix(DATA_PREFIX) for f in self.augment_files or []],
        )

    def _augment_manifest(self, outer: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """manifest-augment: checksums of the augmented header and payload files, outside the
        signature. The C++ client has no such member and stops at it."""
        if not self.accept_augmented:
            raise ArtifactError(
                "Got unexpected token Unrecognized expected 'Header'",
                kind="unsupported",
                member=MANIFEST_AUGMENT,
            )
        entries = _parse_manifest(_read_small(outer, member))
        if set(entries) & set(self.manifest):
            raise ArtifactError(
                "readHeaderV3: Failed to populate the manifest's checksum store: "
                "file already exists",
                member=", ".join(sorted(set(entries) & set(self.manifest))),
            )
        self.manifest.update(entries)
        self.augment_files = [f for f in entries if f.startswith(DATA_PREFIX)]

    def _augment_header(
        self, outer: tarfile.TarFile, members: Iterator[tarfile.TarInfo], header_name: str
    ) -> _Header:
        """header-augment.tar.<ext>, compressed as header.tar.<ext> is (the grammar pairs them)."""
        expected = HEADER_AUGMENT + header_name.removeprefix("header.tar")
        member = self._next(members)
        if member is None:
            raise ArtifactError("The artifact does not contain all required fields")
        if member.name != expected:
            raise _structure(self.path)
        if expected.endswith(".zst"):
            # areader/reader.go matches "header-augument.tar.zst" (sic): zstd is refused.
            raise ArtifactError(
                f"reader: found unexpected file in artifact: {expected}", kind="unsupported"
            )
        augment, _ = self._header(outer, member, _Header(augmented=True))
        return augment

    def _next(self, members: Iterator[tarfile.TarInfo]) -> tarfile.TarInfo | None:
        member = next(members, None)
        if member is not None:
            self.path.append(member.name)
        return member

    def _expect(self, members: Iterator[tarfile.TarInfo], name: str) -> tarfile.TarInfo:
        member = self._next(members)
        if member is None or member.name != name:
            got = member.name if member else "EOF"
            raise ArtifactError(f"Got unexpected token '{got}' expected '{name}'")
        return member

    def _check(self, name: str, calculated: str) -> None:
        expected = self.manifest.get(name)
        if expected is None:
            raise ArtifactError(
                f"Payload: checksum missing for file: {name}", kind="checksum", member=MANIFEST
            )
        if expected != calculated:
            raise _mismatch(expected, calculated, name)
        self.seen.add(name)

    def _signature(
        self, outer: tarfile.TarFile, member: tarfile.TarInfo | None, manifest: bytes
    ) -> str:
        if member is None or member.name != MANIFEST_SIG:
            if self.require_signature:
                raise ArtifactError(
                    "expecting signed artifact, but no signature file found", kind="signature"
                )
            return "unsigned"
        signature = _read_small(outer, member)
        if self.verify_key is None:
            return "present, not checked"
        if not verify_manifest(self.verify_key, manifest, signature):
            raise ArtifactError("Wrong manifest signature or wrong key", kind="signature")
        return "verified"

    def _header(
        self, outer: tarfile.TarFile, member: tarfile.TarInfo, header: _Header
    ) -> tuple[_Header, str]:
        suffix = member.name.partition(".tar")[2]
        name = compression.name_of_suffix(suffix)
        stored = ChunkReader(outer.extractfile(member), hashed=True)  # type: ignore[arg-type]
        unpacked = compression.decompressor(name, stored)  # type: ignore[arg-type]
        with _inner_errors(member.name), tarfile.open(fileobj=unpacked, mode="r|") as inner:
            header.read(inner)
        self._check(member.name, stored.drain())  # type: ignore[arg-type]
        return header, name

    def _payloads(
        self, outer: tarfile.TarFile, members: Iterator[tarfile.TarInfo]
    ) -> list[PayloadFile]:
        files: list[PayloadFile] = []
        for index, member in enumerate(members):
            match = DATA_RE.fullmatch(member.name)
            if match is None and self.accept_augmented and member.name.startswith(HEADER_AUGMENT):
                raise _structure([*self.path, member.name])
            if match is None:
                raise ArtifactError(f"reader: found unexpected file in artifact: {member.name}")
            if index > 0 or match.group(1) != "0000":
                raise ArtifactError("Only one artifact payload supported", kind="unsupported")
            name = compression.name_of_suffix(match.group(2) or "")
            stored = outer.extractfile(member)
            unpacked = compression.decompressor(name, stored)  # type: ignore[arg-type]
            with _inner_errors(member.name), tarfile.open(fileobj=unpacked, mode="r|") as inner:
                files.extend(self._payload_file(inner, item) for item in inner)
        return files

    def _payload_file(self, inner: tarfile.TarFile, item: tarfile.TarInfo) -> PayloadFile:
        path = DATA_PREFIX + item.name
        if path not in self.manifest:
            raise ArtifactError(
                "Payload contains file that is not listed in the manifest.",
                kind="checksum",
                member=path,
            )
        handle = inner.extractfile(item)
        if handle is None:
            raise ArtifactError("expected a regular file", member=path)
        sha = hashlib.sha256()
        while chunk := handle.read(DRAIN_SIZE):
            sha.update(chunk)
        self._check(path, sha.hexdigest())
        return PayloadFile(name=item.name, size=item.size, sha256=sha.hexdigest())


@contextmanager
def _inner_errors(member: str | None) -> Iterator[None]:
    """Turn a corrupt or cut compressed or tar stream into an ArtifactError naming `member`."""
    try:
        yield
    except (*compression.DECOMPRESSION_ERRORS, tarfile.TarError) as exc:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, EOFError) or any(word in text for word in _CUT_WORDS):
            kind = "truncated"
        else:
            kind = "compression" if member else "format"
        raise ArtifactError(
            f"reader: error reading archive: {text}", kind=kind, member=member
        ) from exc


def read_artifact(
    source: BinaryIO | Iterable[bytes],
    *,
    verify_key: PublicKey | None = None,
    device_type: str | None = None,
    require_signature: bool = False,
    accept_augmented: bool = False,
) -> ArtifactInfo:
    """Read and verify a whole artifact in one pass; raise ArtifactError on the first defect.

    `verify_key` implies that a signature is required, as on a client configured with one.
    `accept_augmented` reads augmented artifacts as mender-artifact and the server do; without
    it they are refused as the C++ client refuses them.
    """
    stream = ChunkReader(source)
    with _inner_errors(None):
        reading = _Reading(stream, verify_key, device_type, require_signature, accept_augmented)
        return reading.run()
