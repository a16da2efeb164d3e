"""Artifact upload (real Mender-made artifacts included) and presigned, ranged, capped downloads."""

from __future__ import annotations

import io
import time

import pytest
import requests

from mendersim.artifact.reader import read_artifact
from mendersim.mender_api.management import MenderApiError
from mendersim.server.process import running_server

pytestmark = pytest.mark.integration

SIZE = 300_000


def _instructions(server, make_device, artifact_name, device_type):
    device = make_device()
    device.authenticate()
    server.management().create_deployment("dl", artifact_name, devices=[device.device_id])
    answer = device.next("old", device_type)
    assert answer.status_code == 200
    return answer.json()


def test_real_artifacts_upload_and_list(server, mender_tool_artifacts):
    api = server.management()
    # 3.9's rootfs-image type-info breaks the rule current servers check at upload (4.3.1+)
    with pytest.raises(MenderApiError, match=r"HTTP 400: .*Type in type-info header does not"):
        api.upload_artifact(mender_tool_artifacts / "rootfs.mender", "rootfs")
    date_id = api.upload_artifact(mender_tool_artifacts / "single-file.mender", "date")
    listed = {a["id"]: a for a in api.list_artifacts()}
    assert "deployments-phase-testing" not in {a["name"] for a in listed.values()}
    assert listed[date_id]["device_types_compatible"] == ["qemux86-64", "docker-client"]
    assert listed[date_id]["description"] == "date"
    assert listed[date_id]["updates"][0]["files"][0]["size"] == 2
    assert listed[date_id]["name"] == "date"
    assert listed[date_id]["updates"][0]["type_info"]["type"] == "single-file"
    with pytest.raises(MenderApiError, match="HTTP 409"):
        api.upload_artifact(mender_tool_artifacts / "single-file.mender")


def test_defective_artifact_is_refused(server, tmp_path, mender_tool_artifacts):
    broken = tmp_path / "broken.mender"
    broken.write_bytes((mender_tool_artifacts / "single-file.mender").read_bytes()[:3000])
    with pytest.raises(MenderApiError, match="HTTP 400: cannot read artifact"):
        server.management().upload_artifact(broken)


def test_download_full_and_ranges(server, make_device, make_artifact):
    path = make_artifact("ranged", "range-type", SIZE)
    server.management().upload_artifact(path)
    uri = _instructions(server, make_device, "ranged", "range-type")["artifact"]["source"]["uri"]
    content = path.read_bytes()
    full = requests.get(uri)
    assert full.status_code == 200
    assert full.content == content
    assert full.headers["Content-Length"] == str(len(content))
    assert full.headers["Accept-Ranges"] == "bytes"
    part = requests.get(uri, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.content == content[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(content)}"
    tail = requests.get(uri, headers={"Range": "bytes=5000-"})
    assert tail.status_code == 206 and tail.content == content[5000:]
    beyond = requests.get(uri, headers={"Range": f"bytes={len(content)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(content)}"


def test_tampered_link_is_403(server, make_device, make_artifact):
    server.management().upload_artifact(make_artifact("tamper", "tamper-type"))
    uri = _instructions(server, make_device, "tamper", "tamper-type")["artifact"]["source"]["uri"]
    assert requests.get(uri).status_code == 200
    assert requests.get(uri[:-1] + ("0" if uri[-1] != "0" else "1")).status_code == 403
    later = uri.replace("expire=", "expire=9")
    assert requests.get(later).status_code == 403
    assert requests.get(uri.split("?")[0]).status_code == 403


def test_expired_link_is_403_and_bandwidth_cap_holds(make_artifact, spec_check):
    from server_testkit import SimDevice

    path = make_artifact("capped", "cap-type", SIZE)
    with running_server("--presign-lifetime", "2s", "--download-rate", "400KiB") as server:
        server.management().upload_artifact(path)
        device = SimDevice(server.url, spec_check)
        device.authenticate()
        device_id = device.device_id
        server.management().create_deployment("cap", "capped", devices=[device_id])
        uri = device.next("old", "cap-type").json()["artifact"]["source"]["uri"]
        started = time.monotonic()
        body = requests.get(uri).content
        elapsed = time.monotonic() - started
        expected = len(body) / (400 * 1024)
        assert body == path.read_bytes()
        assert expected * 0.8 < elapsed < expected * 2 + 0.5
        time.sleep(max(0.0, 3.1 - elapsed))
        assert requests.get(uri).status_code == 403


def test_zero_byte_payload_uploads_and_downloads_whole(server, make_device, make_artifact):
    path = make_artifact("empty-payload", "zero-type", 0)
    artifact_id = server.management().upload_artifact(path)
    listed = {a["id"]: a for a in server.management().list_artifacts()}
    assert listed[artifact_id]["updates"][0]["files"][0]["size"] == 0
    instructions = _instructions(server, make_device, "empty-payload", "zero-type")
    download = requests.get(instructions["artifact"]["source"]["uri"])
    assert download.status_code == 200 and download.content == path.read_bytes()
    with io.BytesIO(download.content) as handle:
        files = read_artifact(handle, device_type="zero-type").payload_files
    assert [(f.name, f.size) for f in files] == [("rootfs.img", 0)]


def test_augmented_artifact_uploads_with_its_merged_fields(
    server, make_device, mender_tool_artifacts
):
    path = mender_tool_artifacts / "augmented.mender"
    artifact_id = server.management().upload_artifact(path, "augmented")
    listed = {a["id"]: a for a in server.management().list_artifacts()}[artifact_id]
    assert listed["updates"][0]["type_info"]["type"] == "delta"
    assert [f["name"] for f in listed["updates"][0]["files"]] == ["delta.bin", "patch.bin"]
    assert listed["artifact_provides"]["rootfs-image.delta.source"] == "1.0"
    assert listed["artifact_depends"]["rootfs-image.checksum"] == "ab12"
    instructions = _instructions(server, make_device, "delta-1", "qemux86-64")
    download = requests.get(instructions["artifact"]["source"]["uri"])
    assert download.status_code == 200 and download.content == path.read_bytes()
