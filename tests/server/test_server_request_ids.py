"""Mender's error conventions: `X-MEN-RequestID` on every answer, JSON errors carrying it,
JSON 404/405 for what no route handles (mender-server `pkg/requestid`, `pkg/routing`)."""

from __future__ import annotations

import uuid

import pytest
import requests

pytestmark = pytest.mark.integration

NEXT = "/api/devices/v1/deployments/device/deployments/next"


def test_made_up_ids_are_uuids_and_differ(make_device):
    device = make_device()
    first, second = device.authenticate(), device.next("a", "t")
    ids = [first.headers["X-MEN-RequestID"], second.headers["X-MEN-RequestID"]]
    assert [uuid.UUID(i).version for i in ids] == [4, 4]
    assert ids[0] != ids[1]


def test_a_client_id_is_echoed_in_header_and_error_body(server):
    answer = requests.get(
        server.url + NEXT,
        params={"artifact_name": "a", "device_type": "t"},
        headers={"X-MEN-RequestID": "trace-42"},
    )
    assert answer.status_code == 401
    assert answer.headers["X-MEN-RequestID"] == "trace-42"
    assert answer.json() == {"error": "unauthorized", "request_id": "trace-42"}


def test_error_bodies_carry_the_answers_id(server, make_device):
    device = make_device()
    device.authenticate()
    bad = device.session.post(server.url + NEXT, data=b"{", headers=device.headers())
    assert bad.status_code == 400
    assert bad.json()["request_id"] == bad.headers["X-MEN-RequestID"] != ""
    management = requests.get(f"{server.url}/api/management/v2/devauth/devices")
    assert management.status_code == 401
    assert management.json()["request_id"] == management.headers["X-MEN-RequestID"]


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/nowhere", 404, "not found"),
        ("GET", "/api/devices/v1/inventory/nothing/here", 404, "not found"),
        ("DELETE", "/api/devices/v1/authentication/auth_requests", 405, "method not allowed"),
    ],
)
def test_unknown_routes_answer_mender_json(server, method, path, status, message):
    answer = requests.request(method, server.url + path)
    assert answer.status_code == status
    assert answer.headers["Content-Type"].startswith("application/json")
    request_id = answer.headers["X-MEN-RequestID"]
    assert answer.json() == {"error": message, "request_id": request_id}


def test_streamed_downloads_and_empty_answers_carry_the_id(server, make_device, make_artifact):
    device = make_device()
    device.authenticate()
    device.put_inventory([{"name": "device_type", "value": "rid-type"}])
    api = server.management()
    api.upload_artifact(make_artifact("rid-1", "rid-type"))
    device_id = device.device_id
    deployment_id = api.create_deployment("rid", "rid-1", devices=[device_id])
    uri = device.next("old", "rid-type").json()["artifact"]["source"]["uri"]
    download = requests.get(uri, headers={"X-MEN-RequestID": "dl-1"})
    assert download.status_code == 200 and download.headers["X-MEN-RequestID"] == "dl-1"
    ranged = requests.get(uri, headers={"Range": "bytes=999999999-"})
    assert ranged.status_code == 416 and ranged.headers["X-MEN-RequestID"]
    empty = device.status(deployment_id, "downloading")
    assert empty.status_code == 204 and empty.headers["X-MEN-RequestID"]
