"""Mender's own `mender-artifact` (Debian package) accepts what we write, and we read its output.

The Debian build (3.9) knows gzip, lzma (xz) and none; zstd and DER-encoded ECDSA signatures
came in later releases, so those are covered by the reader tests only.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from mendersim.artifact.reader import read_artifact
from mendersim.artifact.writer import write_artifact
from mendersim.fleet import keys

pytestmark = pytest.mark.integration

MENDER_ARTIFACT = "/usr/bin/mender-artifact"


def _tool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MENDER_ARTIFACT, *map(str, args)], capture_output=True, text=True, timeout=60
    )


def _public_pem(tmp_path: Path, key: keys.PrivateKey) -> Path:
    path = tmp_path / "public.pem"
    path.write_text(keys.public_pem(key))
    return path


@pytest.mark.parametrize("compression", ["gzip", "xz", "none"])
def test_validate_accepts_written_artifact(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "a.mender"
    write_artifact(path, name="rel-7", device_types=["dt-a", "dt-b"], payload_size=300_000,
                   compression=compression)  # fmt: skip
    result = _tool("validate", path)
    assert result.returncode == 0, result.stderr
    shown = _tool("read", path)
    assert shown.returncode == 0, shown.stderr
    assert "Name: rel-7" in shown.stdout
    assert "Type:   rootfs-image" in shown.stdout
    assert "Compatible devices: '[dt-a dt-b]'" in shown.stdout
    assert "size:     300000" in shown.stdout


def test_read_shows_module_type_and_provides(tmp_path: Path) -> None:
    path = tmp_path / "a.mender"
    write_artifact(path, name="app", device_types=["d"], update_type="single-file",
                   payload_name="app.bin", provides={"app.version": "3"})  # fmt: skip
    shown = _tool("read", path)
    assert shown.returncode == 0, shown.stderr
    assert "Type:   single-file" in shown.stdout
    assert "app.version: 3" in shown.stdout
    assert "rootfs-image.single-file.version: app" in shown.stdout


@pytest.mark.parametrize("key_name", ["rsa_key", "ecdsa_key"])
def test_validate_checks_our_signature(
    tmp_path: Path, request: pytest.FixtureRequest, other_rsa_key: keys.PrivateKey,
    key_name: str,
) -> None:  # fmt: skip
    key = request.getfixturevalue(key_name)
    path = tmp_path / "signed.mender"
    write_artifact(path, name="s", device_types=["d"], sign_key=key)
    good = _tool("validate", "-k", _public_pem(tmp_path, key), path)
    assert good.returncode == 0, good.stderr
    wrong = tmp_path / "wrong.pem"
    wrong.write_text(keys.public_pem(other_rsa_key))
    assert _tool("validate", "-k", wrong, path).returncode != 0


@pytest.mark.parametrize(
    ("key_name", "compression"), [("rsa_key", "gzip"), ("ecdsa_key", "lzma"), ("rsa_key", "none")]
)
def test_reader_verifies_artifacts_signed_by_mender_artifact(
    tmp_path: Path, request: pytest.FixtureRequest, key_name: str, compression: str
) -> None:
    key = request.getfixturevalue(key_name)
    private = tmp_path / "private.pem"
    private.write_bytes(  # mender-artifact 3.9 reads only the traditional PEM forms
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    image = tmp_path / "image.ext4"
    image.write_bytes(bytes(range(256)) * 400)
    path = tmp_path / "theirs.mender"
    # module-image: 3.9's rootfs-image type-info fails the 4.3.1 rule (test_artifact_real)
    made = _tool("write", "module-image", "-T", "app-update", "-n", "theirs", "-t", "dt",
                 "-f", image, "-k", private, "--compression", compression, "-o", path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    with path.open("rb") as handle:
        info = read_artifact(handle, verify_key=key.public_key(), device_type="dt")
    assert info.signature == "verified"
    assert (info.name, info.update_type) == ("theirs", "app-update")
    assert [(f.name, f.size) for f in info.payload_files] == [("image.ext4", 102400)]
    assert info.provides["rootfs-image.app-update.version"] == "theirs"


def test_reader_reads_bootstrap_artifact(tmp_path: Path) -> None:
    path = tmp_path / "boot.mender"
    made = _tool("write", "bootstrap-artifact", "-n", "boot", "-t", "dt", "-o", path)
    assert made.returncode == 0, made.stderr
    info = read_artifact(path.read_bytes().splitlines(keepends=True))
    assert (info.name, info.update_type, info.payload_files) == ("boot", None, [])


def test_reader_lists_state_scripts(tmp_path: Path) -> None:
    script = tmp_path / "ArtifactInstall_Enter_00"
    script.write_text("#!/bin/sh\nexit 0\n")
    image = tmp_path / "image.ext4"
    image.write_bytes(b"\x00" * 4096)
    path = tmp_path / "scripted.mender"
    made = _tool("write", "module-image", "-T", "app-update", "-n", "scripted", "-t", "dt",
                 "-f", image, "-s", script, "-o", path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    with path.open("rb") as handle:
        assert read_artifact(handle).scripts == ["ArtifactInstall_Enter_00"]


def test_validate_accepts_a_zero_byte_payload(tmp_path: Path) -> None:
    path = tmp_path / "empty.mender"
    write_artifact(path, name="empty", device_types=["d"], payload_size=0)
    result = _tool("validate", path)
    assert result.returncode == 0, result.stderr
