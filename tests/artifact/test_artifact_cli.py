"""`mendersim artifact make` and `verify` as users run them: output, exit codes, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mendersim.artifact.payload import payload_chunks
from mendersim.artifact.reader import read_artifact
from mendersim.fleet import keys


def _mendersim(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mendersim.cli", *map(str, args)],
        capture_output=True, text=True, timeout=60, cwd=cwd,
    )  # fmt: skip


def _one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mendersim: error: ")
    return lines[0]


def test_make_then_verify(tmp_path: Path) -> None:
    made = _mendersim("artifact", "make", "--name", "fw-1.2", "--device-type", "rpi4",
                      "--device-type", "bbb", "--size", "300KiB", "--compression", "zstd",
                      "--seed", "5", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.count("\n") == 1 and made.stdout.startswith("wrote fw-1.2.mender: ")
    path = tmp_path / "fw-1.2.mender"
    with path.open("rb") as handle:
        info = read_artifact(handle)
    assert (info.name, info.device_types, info.compression) == ("fw-1.2", ["rpi4", "bbb"], "zstd")
    assert info.payload_files[0].size == 300 * 1024

    shown = _mendersim("artifact", "verify", path, "--device-type", "bbb", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    sha = info.payload_files[0].sha256
    for line in (
        "Name: fw-1.2", "Format: mender v3", "Type: rootfs-image", "Signature: unsigned",
        "  device_type: rpi4, bbb", f"  rootfs.img: {300 * 1024} bytes, sha256 {sha}",
        f"  rootfs-image.checksum: {sha}",
    ):  # fmt: skip
        assert line in shown.stdout.splitlines()
    lines = shown.stdout.splitlines()
    clears = lines[lines.index("Clears provides:") + 1 : lines.index("Depends:")]
    assert clears == ["  artifact_group", "  rootfs_image_checksum", "  rootfs-image.*"]


def test_zero_byte_payload_makes_and_verifies(tmp_path: Path) -> None:
    made = _mendersim("artifact", "make", "--name", "empty", "-t", "d", "--size", "0",
                      "-o", "e.mender", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    shown = _mendersim("artifact", "verify", "e.mender", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert f"  rootfs.img: 0 bytes, sha256 {empty_sha}" in shown.stdout.splitlines()


def test_signed_make_and_verify_with_key(tmp_path: Path, ecdsa_key: keys.PrivateKey) -> None:
    (tmp_path / "private.pem").write_bytes(keys.private_pem(ecdsa_key))
    (tmp_path / "public.pem").write_text(keys.public_pem(ecdsa_key))
    made = _mendersim("artifact", "make", "--name", "s", "-t", "d", "--size", "1000",
                      "--sign-key", "private.pem", "-o", "out.mender", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "signed (ecdsa-p256)" in made.stdout
    checked = _mendersim("artifact", "verify", "out.mender", "--key", "public.pem", cwd=tmp_path)
    assert "Signature: verified" in checked.stdout.splitlines()
    unchecked = _mendersim("artifact", "verify", "out.mender", cwd=tmp_path)
    assert "Signature: present, not checked" in unchecked.stdout.splitlines()


def test_verify_defects_exit_1_with_one_line(tmp_path: Path, rsa_key: keys.PrivateKey) -> None:
    assert _mendersim("artifact", "make", "--name", "n", "-t", "d", "--size", "20000",
                      "--compression", "none", cwd=tmp_path).returncode == 0  # fmt: skip
    wrong_type = _mendersim("artifact", "verify", "n.mender", "--device-type", "x", cwd=tmp_path)
    assert "n.mender: Artifact device type doesn't match" in _one_line_error(wrong_type, 1)

    (tmp_path / "rsa.pem").write_text(keys.public_pem(rsa_key))
    unsigned = _mendersim("artifact", "verify", "n.mender", "--key", "rsa.pem", cwd=tmp_path)
    assert "no signature file found" in _one_line_error(unsigned, 1)

    data = bytearray((tmp_path / "n.mender").read_bytes())
    data[data.index(next(payload_chunks(20000, 0))[:100]) + 5000] ^= 0xFF
    (tmp_path / "bad.mender").write_bytes(bytes(data))
    tampered = _mendersim("artifact", "verify", "bad.mender", cwd=tmp_path)
    assert "does not match the expected checksum" in _one_line_error(tampered, 1)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["make", "--name", "n", "-t", "d", "--size", "12 parsecs"], "--size"),
        (["make", "--name", "n", "-t", "d", "--sign-key", "missing.pem"], "--sign-key missing.pem"),
        (
            ["make", "--name", "n", "-t", "d", "--sign-key", "ed.pem"],
            "cannot sign Mender artifacts",
        ),
        (["make", "--name", "n", "-t", "d", "-o", "no/such/dir/a.mender"], "no/such/dir"),
        (["verify", "absent.mender"], "absent.mender: No such file"),
        (["verify", "garbage.mender"], "garbage.mender: reader: error reading archive"),
        (["verify", "garbage.mender", "--key", "garbage.mender"], "--key garbage.mender"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "ed.pem").write_bytes(keys.private_pem(keys.generate("ed25519")))
    (tmp_path / "garbage.mender").write_bytes(b"\x00garbage" * 200)
    result = _mendersim("artifact", *args, cwd=tmp_path)
    assert result.returncode in (1, 2)
    assert expected in _one_line_error(result, result.returncode)
