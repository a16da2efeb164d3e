"""Every altered byte is caught, with the error a real Mender client logs."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mendersim.artifact.payload import payload_chunks
from mendersim.artifact.reader import ArtifactError, read_artifact
from mendersim.artifact.writer import write_artifact
from mendersim.fleet import keys

MISMATCH = "The checksum of the read byte-stream does not match the expected checksum"


def _artifact(tmp_path: Path, **kwargs: object) -> bytearray:
    path = tmp_path / "a.mender"
    arguments = {"name": "tamper-me", "device_types": ["d"], "payload_size": 100_000}
    write_artifact(path, **{**arguments, **kwargs})  # type: ignore[arg-type]
    return bytearray(path.read_bytes())


def _flip(data: bytearray, needle: bytes, offset: int = 0) -> bytes:
    at = data.index(needle) + offset
    data[at] ^= 0x01
    return bytes(data)


def _read(data: bytes, **kwargs: object) -> ArtifactError:
    with pytest.raises(ArtifactError) as caught:
        read_artifact(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_flipped_payload_byte(tmp_path: Path) -> None:
    data = _artifact(tmp_path, compression="none")
    first_block = next(payload_chunks(100_000, 0))
    error = _read(_flip(data, first_block[:64], 5000))
    assert str(error).startswith(MISMATCH)
    assert (error.kind, error.member) == ("checksum", "data/0000/rootfs.img")


def test_flipped_compressed_payload_byte(tmp_path: Path) -> None:
    data = _artifact(tmp_path, compression="gzip")
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as outer:
        data_offset = outer.getmember("data/0000.tar.gz").offset_data
    data[data_offset + 2000] ^= 0x01
    error = _read(bytes(data))
    # whichever comes first: gzip's CRC at the end of the stream or the manifest checksum
    assert (error.kind, error.member) in {
        ("compression", "data/0000.tar.gz"),
        ("checksum", "data/0000/rootfs.img"),
    }


def test_flipped_header_byte(tmp_path: Path) -> None:
    data = _artifact(tmp_path, compression="none")
    error = _read(_flip(data, b'"artifact_name":"tamper-me"', 20))
    assert str(error).startswith(MISMATCH)
    assert (error.kind, error.member) == ("checksum", "header.tar")


def test_flipped_manifest_byte(tmp_path: Path) -> None:
    data = _artifact(tmp_path, compression="none")
    manifest_start = data.index(b"  data/0000/rootfs.img\n") - 64
    data[manifest_start] = ord("0") if data[manifest_start] != ord("0") else ord("1")
    error = _read(bytes(data))
    assert str(error).startswith(MISMATCH)
    assert error.member == "data/0000/rootfs.img"


def test_flipped_manifest_byte_of_signed_artifact(
    tmp_path: Path, ecdsa_key: keys.PrivateKey
) -> None:
    data = _artifact(tmp_path, sign_key=ecdsa_key)
    at = data.index(b"  header.tar.gz\n") - 3
    data[at] = ord("0") if data[at] != ord("0") else ord("1")  # still a valid manifest line
    error = _read(bytes(data), verify_key=ecdsa_key.public_key())
    assert str(error) == "Wrong manifest signature or wrong key"


def test_flipped_signature_byte(tmp_path: Path, rsa_key: keys.PrivateKey) -> None:
    data = bytearray(_artifact(tmp_path, sign_key=rsa_key))
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as outer:
        at = outer.getmember("manifest.sig").offset_data + 10
    data[at] = ord("A") if data[at] != ord("A") else ord("B")
    error = _read(bytes(data), verify_key=rsa_key.public_key())
    assert error.kind == "signature"


def test_changed_version_file(tmp_path: Path) -> None:
    data = _artifact(tmp_path)
    original = b'{"format":"mender","version":3}'
    error = _read(bytes(data).replace(original, original.replace(b"format", b"gormat")))
    assert str(error) == (
        "Failed to parse the version: The client only understands the 'mender' Artifact type. "
        "Got format: None"
    )
    reordered = b'{"version":3,"format":"mender"}'  # same meaning, same length, other checksum
    error = _read(bytes(data).replace(original, reordered))
    assert str(error).startswith(
        "The checksum of version file does not match the expected checksum, (expected): "
    )
    assert (error.kind, error.member) == ("checksum", "version")


def test_wrong_device_type(tmp_path: Path) -> None:
    data = _artifact(tmp_path, device_types=["beaglebone", "rpi4"])
    error = _read(bytes(data), device_type="qemux86-64")
    assert str(error).startswith("Artifact device type doesn't match")
    assert "qemux86-64" in str(error) and "beaglebone, rpi4" in str(error)
    assert error.kind == "device_type"


def _rebuild(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as outer:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            outer.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _members(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as outer:
        return [(m.name, outer.extractfile(m).read()) for m in outer]  # type: ignore[union-attr]


def test_manifest_entry_without_file(tmp_path: Path) -> None:
    members = _members(bytes(_artifact(tmp_path)))
    manifest = members[1][1] + b"0" * 64 + b"  data/0000/extra.img\n"
    error = _read(_rebuild([members[0], ("manifest", manifest), *members[2:]]))
    assert "missing from the artifact: data/0000/extra.img" in str(error)


def test_payload_file_not_in_manifest(tmp_path: Path) -> None:
    members = _members(bytes(_artifact(tmp_path)))
    lines = members[1][1].splitlines(keepends=True)
    manifest = b"".join(line for line in lines if b"data/0000/" not in line)
    error = _read(_rebuild([members[0], ("manifest", manifest), *members[2:]]))
    assert str(error).startswith("Payload contains file that is not listed in the manifest.")


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (["manifest", "version"], "Got unexpected token 'manifest' expected 'version'"),
        (["version", "header.tar.gz"], "Got unexpected token 'header.tar.gz' expected 'manifest'"),
        (["version", "manifest", "data/0000.tar.gz"], "expected 'Header'"),
        (
            ["version", "manifest", "header.tar.gz", "data/0000.tar.gz", "junk"],
            "found unexpected file in artifact: junk",
        ),
        (
            ["version", "manifest", "header.tar.gz", "data/0000.tar.gz", "data/0000.tar.gz"],
            "Only one artifact payload supported",
        ),
    ],
)
def test_member_order_and_names(tmp_path: Path, order: list[str], message: str) -> None:
    members = dict(_members(bytes(_artifact(tmp_path))))
    members["junk"] = b"x"
    error = _read(_rebuild([(name, members[name]) for name in order]))
    assert message in str(error)


def test_version_two_is_refused(tmp_path: Path) -> None:
    members = _members(bytes(_artifact(tmp_path)))
    error = _read(_rebuild([("version", b'{"format":"mender","version":2}'), *members[1:]]))
    assert str(error) == (
        "Failed to parse the version: Only version 3 is supported, received version 2"
    )


def _with_header_info(data: bytes, change: Callable[[dict], None]) -> bytes:
    """Rebuild an uncompressed artifact with an altered header-info and a matching manifest."""
    members = _members(data)
    header = dict(_members(members[2][1]))
    info = json.loads(header["header-info"])
    change(info)
    header["header-info"] = json.dumps(info).encode()
    header_tar = _rebuild(list(header.items()))
    old_sha, new_sha = hashlib.sha256(members[2][1]).hexdigest(), hashlib.sha256(header_tar)
    manifest = members[1][1].replace(old_sha.encode(), new_sha.hexdigest().encode())
    return _rebuild([members[0], ("manifest", manifest), ("header.tar", header_tar), *members[3:]])


def test_altered_header_with_stale_manifest(tmp_path: Path) -> None:
    data = bytes(_artifact(tmp_path, compression="none"))
    members = _members(data)
    header = _members(_with_header_info(data, lambda info: info.pop("artifact_depends")))[2]
    error = _read(_rebuild([*members[:2], header, *members[3:]]))
    assert str(error).startswith(MISMATCH)
    assert error.member == "header.tar"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda info: info.pop("artifact_depends"), "artifact_depends.device_type must be a list"),
        (lambda info: info["artifact_provides"].pop("artifact_name"), "artifact_name is missing"),
        (lambda info: info["payloads"].append({"type": "x"}), "Unsupported number of payloads"),
    ],
)
def test_invalid_header_info(tmp_path: Path, change: Callable[[dict], None], message: str) -> None:
    data = bytes(_artifact(tmp_path, compression="none"))
    error = _read(_with_header_info(data, change))
    assert str(error).startswith("Failed to parse the header: ")
    assert message in str(error)


def test_garbage_is_refused() -> None:
    error = _read(b"this is not a tar archive at all" * 40)
    assert str(error) == "reader: error reading archive: invalid header"
    assert error.kind == "format"


def test_truncated_artifact(tmp_path: Path) -> None:
    data = bytes(_artifact(tmp_path))
    for cut in (0, 100, 2000, len(data) // 2):
        error = _read(data[:cut])
        assert error.kind == "truncated", (cut, error)


def test_malformed_manifest_line(tmp_path: Path) -> None:
    members = _members(bytes(_artifact(tmp_path)))
    manifest = members[1][1].replace(b"  version", b" version")
    error = _read(_rebuild([members[0], ("manifest", manifest), *members[2:]]))
    assert str(error).startswith("Failed to parse the manifest: Line (")
    assert "not in the expected manifest format" in str(error)
