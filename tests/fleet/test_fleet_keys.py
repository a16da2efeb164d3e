"""Keys as seeded: every key type signs the way Mender's deviceauth verifies."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from mendersim.fleet import keys
from mendersim.fleet.model import DeviceRecord

BODY = json.dumps(
    {"id_data": '{"vin":"1M8GDM9AXKP042788"}', "pubkey": "...", "tier": "standard"},
    separators=(",", ":"),
).encode()


def record_for(key_type: str) -> DeviceRecord:
    """A device record holding a key as the seed store keeps it (PEM bytes)."""
    key = keys.generate(key_type)
    return DeviceRecord(
        device_id="t-000000",
        profile="t",
        key_type=key_type,
        id_data_text='{"vin":"1M8GDM9AXKP042788"}',
        private_key_pem=keys.private_pem(key),
        device_type="dt",
        artifact_name="a",
        inventory_text="{}",
    )


@pytest.mark.parametrize("key_type", keys.KEY_TYPES)
def test_signature_verifies_as_the_server_verifies(key_type):
    record = record_for(key_type)
    private = record.private_key()  # loaded with RSA validation skipped
    public = keys.load_public(record.public_key_pem)
    assert keys.key_type_of(public) == key_type
    signature = keys.sign(private, BODY)
    assert keys.verify(public, signature, BODY)
    assert not keys.verify(public, signature, BODY + b" ")


@pytest.mark.parametrize("key_type", ["rsa2048", "rsa3072", "rsa4096"])
def test_rsa_signature_is_pkcs1_v15_sha256(key_type):
    record = record_for(key_type)
    public = keys.load_public(record.public_key_pem)
    assert isinstance(public, rsa.RSAPublicKey)
    signature = keys.sign(record.private_key(), BODY)
    assert len(signature) == public.key_size // 8
    public.verify(signature, BODY, padding.PKCS1v15(), hashes.SHA256())  # raises if not


def test_ecdsa_signature_is_der_over_sha256():
    record = record_for("ecdsa-p256")
    public = keys.load_public(record.public_key_pem)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    signature = keys.sign(record.private_key(), BODY)
    r, s = decode_dss_signature(signature)  # DER SEQUENCE{r, s}, not raw r‖s
    assert r > 0 and s > 0
    public.verify(signature, BODY, ec.ECDSA(hashes.SHA256()))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert not keys.verify(public, raw, BODY)


def test_ed25519_signs_the_raw_body():
    record = record_for("ed25519")
    public = keys.load_public(record.public_key_pem)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    signature = keys.sign(record.private_key(), BODY)
    assert len(signature) == 64
    public.verify(signature, BODY)
