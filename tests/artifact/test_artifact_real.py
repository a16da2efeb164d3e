"""The reader understands artifacts made by Mender's own tools."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mendersim.artifact.reader import ArtifactError, PayloadFile, read_artifact


def test_rootfs_image_artifact(real_artifacts: Path) -> None:
    path = real_artifacts / "rootfs.mender"
    digest = hashlib.sha256((real_artifacts / "dump").read_bytes()).hexdigest()
    with path.open("rb") as handle:
        info = read_artifact(handle, device_type="qemux86-64")
    assert (info.format, info.version) == ("mender", 3)
    assert info.name == "deployments-phase-testing"
    assert info.update_type == "rootfs-image"
    assert info.device_types == ["qemux86-64"]
    assert info.provides == {
        "artifact_name": "deployments-phase-testing",
        "rootfs-image.checksum": digest,
        "rootfs-image.version": "deployments-phase-testing",
    }
    assert info.depends == {"device_type": ["qemux86-64"]}
    assert info.payload_files == [PayloadFile("dump", 512000, digest)]
    assert info.compression == "gzip"
    assert (info.signed, info.signature) == (False, "unsigned")
    assert info.size == path.stat().st_size


def test_single_file_date_artifact(real_artifacts: Path) -> None:
    path = real_artifacts / "single-file.mender"
    with path.open("rb") as handle:
        info = read_artifact(handle, device_type="docker-client")
    assert info.name == "date"
    assert info.update_type == "single-file"
    assert info.device_types == ["qemux86-64", "docker-client"]
    assert [(f.name, f.size) for f in info.payload_files] == [
        ("dest_dir", 2),
        ("filename", 13),
        ("permissions", 4),
        ("date.created", 29),
    ]
    assert info.size == path.stat().st_size


def test_real_artifact_for_another_device_type_is_refused(real_artifacts: Path) -> None:
    date = real_artifacts / "single-file.mender"
    with date.open("rb") as handle, pytest.raises(ArtifactError) as caught:
        read_artifact(handle, device_type="raspberrypi4")
    assert str(caught.value).startswith("Artifact device type doesn't match")
    assert caught.value.kind == "device_type"


def test_unsigned_real_artifact_refused_when_signature_required(real_artifacts: Path) -> None:
    test_artifact = real_artifacts / "rootfs.mender"
    with test_artifact.open("rb") as handle, pytest.raises(ArtifactError) as caught:
        read_artifact(handle, require_signature=True)
    assert str(caught.value) == "expecting signed artifact, but no signature file found"
