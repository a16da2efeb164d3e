"""What the writer writes, the reader reads back: every compression, signed and unsigned."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mendersim.artifact.compression import EXTENSIONS
from mendersim.artifact.payload import payload_chunks
from mendersim.artifact.reader import ArtifactError, read_artifact
from mendersim.artifact.writer import write_artifact
from mendersim.fleet import keys

COMPRESSIONS = list(EXTENSIONS)


def _payload_sha(size: int, seed: int) -> str:
    sha = hashlib.sha256()
    for chunk in payload_chunks(size, seed):
        sha.update(chunk)
    return sha.hexdigest()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_round_trip_every_compression(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "a.mender"
    written = write_artifact(
        path, name="release-1", device_types=["dt-a", "dt-b"], payload_size=200_003,
        compression=compression, seed=7,
    )  # fmt: skip
    with path.open("rb") as handle:
        info = read_artifact(handle, device_type="dt-b")
    expected_sha = _payload_sha(200_003, 7)
    assert info == written
    assert info.name == "release-1"
    assert info.update_type == "rootfs-image"
    assert info.compression == compression
    assert info.size == path.stat().st_size
    assert [(f.name, f.size, f.sha256) for f in info.payload_files] == [
        ("rootfs.img", 200_003, expected_sha)
    ]
    assert info.provides == {
        "artifact_name": "release-1",
        "rootfs-image.checksum": expected_sha,
        "rootfs-image.version": "release-1",
    }
    assert info.depends == {"device_type": ["dt-a", "dt-b"]}


def test_layout_matches_mender_artifact(tmp_path: Path, rsa_key: keys.PrivateKey) -> None:
    path = tmp_path / "a.mender"
    write_artifact(path, name="n", device_types=["d"], payload_size=10, sign_key=rsa_key)
    with tarfile.open(path) as outer:
        assert outer.getnames() == [
            "version", "manifest", "manifest.sig", "header.tar.gz", "data/0000.tar.gz",
        ]  # fmt: skip
        assert outer.extractfile("version").read() == b'{"format":"mender","version":3}'
        manifest = outer.extractfile("manifest").read().decode().splitlines()
        header = outer.extractfile("header.tar.gz").read()
    assert [line.split("  ")[1] for line in manifest] == [
        "data/0000/rootfs.img", "header.tar.gz", "version",
    ]  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(header), mode="r:gz") as inner:
        assert inner.getnames() == [
            "header-info",
            "headers/0000/type-info",
            "headers/0000/meta-data",
        ]
        assert inner.extractfile("header-info").read() == (
            b'{"payloads":[{"type":"rootfs-image"}],"artifact_provides":{"artifact_name":"n"},'
            b'"artifact_depends":{"device_type":["d"]}}'
        )


def test_same_seed_same_bytes_other_seed_other_payload(tmp_path: Path) -> None:
    paths = [tmp_path / f"{i}.mender" for i in range(3)]
    for path, seed in zip(paths, (1, 1, 2), strict=True):
        write_artifact(path, name="n", device_types=["d"], payload_size=150_000, seed=seed)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_module_type_provides_depends_and_payload_name(tmp_path: Path) -> None:
    path = tmp_path / "a.mender"
    write_artifact(
        path, name="app-2", device_types=["d"], update_type="single-file", payload_name="app.bin",
        provides={"data-partition.app.version": "2"}, depends={"rootfs-image.version": "os-1"},
        payload_size=0,
    )  # fmt: skip
    info = read_artifact([path.read_bytes()])
    assert info.update_type == "single-file"
    assert info.provides == {
        "artifact_name": "app-2",
        "rootfs-image.single-file.version": "app-2",
        "data-partition.app.version": "2",
    }
    assert info.depends == {"device_type": ["d"], "rootfs-image.version": "os-1"}
    assert [(f.name, f.size) for f in info.payload_files] == [("app.bin", 0)]


@pytest.mark.parametrize(
    ("key_name", "encoding", "signature_length"),
    [("rsa_key", "raw", 256), ("ecdsa_key", "raw", 64), ("ecdsa_key", "der", None)],
)
def test_signed_round_trip(
    tmp_path: Path, request: pytest.FixtureRequest, key_name: str, encoding: str,
    signature_length: int | None,
) -> None:  # fmt: skip
    key = request.getfixturevalue(key_name)
    path = tmp_path / "signed.mender"
    write_artifact(path, name="s", device_types=["d"], sign_key=key, ecdsa_encoding=encoding)
    with tarfile.open(path) as outer:
        signature = base64.b64decode(outer.extractfile("manifest.sig").read())
    if signature_length is not None:
        assert len(signature) == signature_length
    else:
        assert signature[0] == 0x30 and 70 <= len(signature) <= 72  # ASN.1 SEQUENCE
    with path.open("rb") as handle:
        info = read_artifact(handle, verify_key=key.public_key())
    assert (info.signed, info.signature) == (True, "verified")
    with path.open("rb") as handle:
        unchecked = read_artifact(handle)
    assert (unchecked.signed, unchecked.signature) == (True, "present, not checked")


def test_wrong_key_is_refused(
    tmp_path: Path, rsa_key: keys.PrivateKey, other_rsa_key: keys.PrivateKey,
    ecdsa_key: keys.PrivateKey,
) -> None:  # fmt: skip
    path = tmp_path / "signed.mender"
    write_artifact(path, name="s", device_types=["d"], sign_key=rsa_key)
    for wrong in (other_rsa_key, ecdsa_key):
        with path.open("rb") as handle, pytest.raises(ArtifactError) as caught:
            read_artifact(handle, verify_key=wrong.public_key())
        assert str(caught.value) == "Wrong manifest signature or wrong key"
        assert caught.value.kind == "signature"


def test_unsigned_artifact_refused_when_a_key_or_signature_is_required(
    tmp_path: Path, rsa_key: keys.PrivateKey
) -> None:
    path = tmp_path / "unsigned.mender"
    write_artifact(path, name="u", device_types=["d"])
    for kwargs in ({"require_signature": True}, {"verify_key": rsa_key.public_key()}):
        with path.open("rb") as handle, pytest.raises(ArtifactError) as caught:
            read_artifact(handle, **kwargs)
        assert str(caught.value) == "expecting signed artifact, but no signature file found"


def test_ed25519_cannot_sign(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="cannot sign Mender artifacts"):
        write_artifact(
            tmp_path / "x.mender", name="x", device_types=["d"], sign_key=keys.generate("ed25519")
        )
    assert not (tmp_path / "x.mender").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"compression": "bzip2"}, "unknown compression 'bzip2'"),
        ({"payload_name": "a/b"}, "contains forbidden characters"),
        ({"device_types": []}, "at least one device type"),
        ({"name": ""}, "artifact name must not be empty"),
        ({"update_type": ""}, "payload type must not be empty"),
    ],
)
def test_bad_writer_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    arguments = {"name": "n", "device_types": ["d"], **kwargs}
    with pytest.raises(ArtifactError, match=message):
        write_artifact(tmp_path / "x.mender", **arguments)


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_payload(size: int, seed: int) -> Iterator[bytes]:
        yield bytes(1000)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mendersim.artifact.writer.payload_chunks", failing_payload)
    path = tmp_path / "partial.mender"
    with pytest.raises(OSError, match="No space left"):
        write_artifact(path, name="n", device_types=["d"], payload_size=100_000)
    assert not path.exists()
