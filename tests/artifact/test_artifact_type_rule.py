"""The type-info rule of mender-artifact 4.3.1+: each payload's type-info `type` equals the
payload type in header-info. Checked on the bytes we write, for every payload type and
compression, and enforced by the reader with Mender's text."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from mendersim.artifact import writer
from mendersim.artifact.compression import decompressor
from mendersim.artifact.reader import TYPE_INFO_MISMATCH, ArtifactError, read_artifact
from mendersim.artifact.writer import write_artifact

COMPRESSIONS = ["gzip", "xz", "zstd", "none"]
SUFFIX = {"gzip": ".gz", "xz": ".xz", "zstd": ".zst", "none": ""}


def _header(path: Path, compression: str) -> dict[str, bytes]:
    with tarfile.open(path) as outer:
        member = outer.extractfile(f"header.tar{SUFFIX[compression]}")
        assert member is not None
        raw = decompressor(compression, io.BytesIO(member.read())).read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as header:
        return {m.name: header.extractfile(m).read() for m in header if m.isfile()}


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("update_type", ["rootfs-image", "single-file", "app-update"])
def test_type_info_names_the_header_info_type(tmp_path, update_type, compression):
    path = tmp_path / "a.mender"
    write_artifact(path, name="r", device_types=["d"], payload_size=1000,
                   update_type=update_type, compression=compression)  # fmt: skip
    files = _header(path, compression)
    payloads = json.loads(files["header-info"])["payloads"]
    type_info = json.loads(files["headers/0000/type-info"])
    assert payloads == [{"type": update_type}]
    assert type_info["type"] == update_type
    with path.open("rb") as handle:
        assert read_artifact(handle, device_type="d").update_type == update_type


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize(("written", "type_info"), [("rootfs-image", ""), ("app", "other")])
def test_a_type_info_that_disagrees_is_refused(
    tmp_path, monkeypatch, compression, written, type_info
):
    """`"type": ""` is what mender-artifact before 4.3.1 wrote for rootfs-image."""
    original = writer.type_info

    def disagreeing(*args, **kwargs):
        return {**original(*args, **kwargs), "type": type_info}

    monkeypatch.setattr(writer, "type_info", disagreeing)
    path = tmp_path / "a.mender"
    write_artifact(path, name="r", device_types=["d"], payload_size=100,
                   update_type=written, compression=compression)  # fmt: skip
    assert json.loads(_header(path, compression)["headers/0000/type-info"])["type"] == type_info
    with path.open("rb") as handle, pytest.raises(ArtifactError) as caught:
        read_artifact(handle, device_type="d")
    assert str(caught.value) == f"{TYPE_INFO_MISMATCH} (headers/0000/type-info)"
