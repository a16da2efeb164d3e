"""The reader understands artifacts made by Mender's own tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from mendersim.artifact.reader import TYPE_INFO_MISMATCH, ArtifactError, read_artifact


def test_rootfs_image_of_mender_artifact_3_9_fails_the_4_3_1_type_rule(
    real_artifacts: Path,
) -> None:
    """3.9 writes `"type": ""` in a rootfs-image's type-info; mender-artifact 4.3.1+ and the
    clients built on it refuse that, and so do we."""
    path = real_artifacts / "rootfs.mender"
    with path.open("rb") as handle, pytest.raises(ArtifactError) as caught:
        read_artifact(handle, device_type="qemux86-64")
    assert str(caught.value) == f"{TYPE_INFO_MISMATCH} (headers/0000/type-info)"
    assert caught.value.kind == "format"


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
