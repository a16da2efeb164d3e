"""Device authentication against a real server process: signatures, 400s, acceptance modes,
JWT claims, device limit, revocation and expiry."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from server_testkit import SimDevice

from mendersim.fleet import keys
from mendersim.server.process import running_server

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("key_type", ["rsa2048", "rsa3072", "rsa4096", "ecdsa-p256", "ed25519"])
def test_good_signature_is_accepted_and_tampered_body_refused(make_device, key_type):
    device = make_device(key_type)
    body = device.auth_body()
    signature = keys.sign_b64(device.key, body)
    tampered = body.replace(b'"pubkey"', b'"pubkey" ')
    refused = device.post_auth(tampered, signature)
    assert refused.status_code == 401
    assert refused.json()["error"] == "signature verification failed"
    accepted = device.post_auth(body, signature)
    assert accepted.status_code == 200, accepted.text
    assert accepted.headers["Content-Type"] == "application/jwt"


def test_ecdsa_raw_r_s_signature_is_refused(make_device):
    device = make_device("ecdsa-p256")
    body = device.auth_body()
    r, s = decode_dss_signature(keys.sign(device.key, body))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    response = device.post_auth(body, base64.b64encode(raw).decode())
    assert response.status_code == 401


def test_signature_by_another_key_is_refused(make_device):
    device = make_device("ed25519")
    body = device.auth_body()
    response = device.post_auth(body, keys.sign_b64(keys.generate("ed25519"), body))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "signed", "message"),
    [
        (b"{not json", True, "not JSON"),
        (b'{"pubkey": "x"}', True, "id_data"),
        (b'{"id_data": "[1, 2]", "pubkey": "PEM"}', True, "id_data"),
        (None, False, "missing request signature header"),
        ("bad-key", True, "cannot read public key"),
    ],
)
def test_malformed_requests_get_400(make_device, body, signed, message):
    device = make_device("ed25519")
    if body is None:
        body = device.auth_body()
    elif body == "bad-key":
        body = json.dumps({"id_data": '{"mac": "1"}', "pubkey": "-----BEGIN nonsense"}).encode()
    signature = keys.sign_b64(device.key, body) if signed else None
    response = device.post_auth(body, signature, valid=False)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_short_rsa_key_gets_400(make_device):
    from cryptography.hazmat.primitives.asymmetric import rsa

    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    device = make_device(key=short)
    body = device.auth_body()
    response = device.post_auth(
        body, base64.b64encode(keys.sign(short, body)).decode(), valid=False
    )
    assert response.status_code == 400


def test_token_carries_mender_claims(make_device):
    device = make_device()
    body = device.auth_body(tenant_token=jwt.encode({"mender.tenant": "acme"}, "k" * 32))
    token = device.post_auth(body, keys.sign_b64(device.key, body)).text
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "Mender"
    assert claims["mender.device"] is True
    assert claims["mender.tenant"] == "acme"
    assert claims["exp"] - claims["iat"] == 7 * 86400
    assert claims["jti"] and claims["sub"]


def test_same_identity_same_device_and_key_order_does_not_matter(make_device, server):
    first = make_device(identity={"mac": "aa:bb", "sku": "x"})
    first.authenticate()
    second = make_device(key=first.key, identity={"sku": "x", "mac": "aa:bb"})
    second.authenticate()
    sub = [d.device_id for d in (first, second)]
    assert sub[0] == sub[1]


def test_device_requests_need_a_valid_token(make_device):
    device = make_device()
    device.authenticate()
    assert device.next("a", "t").status_code == 204
    device.token = device.token[:-2] + "xx"
    assert device.next("a", "t").status_code == 401
    device.token = None
    assert device.put_inventory([{"name": "a", "value": "b"}], valid=False).status_code == 401


def test_rejecting_a_device_revokes_its_token(make_device, server):
    device = make_device()
    device.authenticate()
    api = server.management()
    device_id = device.device_id
    view = api.list_devices()
    auth_id = next(d for d in view if d["id"] == device_id)["auth_sets"][0]["id"]
    api.set_auth_status(device_id, auth_id, "rejected")
    assert device.next("a", "t").status_code == 401
    assert device.authenticate().status_code == 401
    api.set_auth_status(device_id, auth_id, "accepted")
    assert device.authenticate().status_code == 200


def _find(api, identity):
    return next(d for d in api.list_devices() if d["identity_data"] == identity)


def test_manual_mode_keeps_devices_pending_until_accepted(spec_check):
    with running_server("--acceptance", "manual") as server:
        device = SimDevice(server.url, spec_check)
        assert device.authenticate().status_code == 401
        api = server.management()
        found = _find(api, device.identity)
        assert found["status"] == "pending"
        assert api.count_devices("pending") == 1
        api.set_auth_status(found["id"], found["auth_sets"][0]["id"], "accepted")
        assert device.authenticate().status_code == 200
        assert api.count_devices("accepted") == 1


def test_preauth_mode_accepts_only_preauthorized_devices(spec_check):
    with running_server("--acceptance", "preauth", "--max-devices", "1") as server:
        api = server.management()
        known = SimDevice(server.url, spec_check, "ecdsa-p256")
        api.preauthorize(known.identity, known.pubkey)
        assert _find(api, known.identity)["status"] == "preauthorized"
        stranger = SimDevice(server.url, spec_check)
        assert stranger.authenticate().status_code == 401
        assert known.authenticate().status_code == 200
        assert _find(api, known.identity)["status"] == "accepted"
        assert _find(api, stranger.identity)["status"] == "pending"
        # the device limit (1) is reached: accepting another is refused
        found = _find(api, stranger.identity)
        with pytest.raises(Exception, match="HTTP 422"):
            api.set_auth_status(found["id"], found["auth_sets"][0]["id"], "accepted")
        twin = SimDevice(server.url, spec_check, identity=known.identity)
        with pytest.raises(Exception, match="HTTP 409"):
            api.preauthorize(twin.identity, twin.pubkey)


def test_device_limit_answers_401_in_auto_mode(spec_check):
    with running_server("--max-devices", "2", "--jwt-lifetime", "2s") as server:
        devices = [SimDevice(server.url, spec_check) for _ in range(3)]
        codes = [d.authenticate().status_code for d in devices]
        assert codes == [200, 200, 401]
        assert devices[2].authenticate().json()["error"].startswith("maximum number")
        # tokens expire after --jwt-lifetime
        assert devices[0].next("a", "t").status_code == 204
        time.sleep(3.1)
        assert devices[0].next("a", "t").status_code == 401
