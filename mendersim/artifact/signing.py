"""manifest.sig: the base64 signature over the manifest bytes, as mender-artifact makes it.

RSA uses PKCS#1 v1.5 over SHA-256. ECDSA P-256 is written by mender-artifact as raw r‖s
(2 × 32 bytes); signatures made by hardware keys are ASN.1 DER, so the reader takes both.
Mender does not sign artifacts with Ed25519.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from mendersim.artifact.format import ArtifactError
from mendersim.fleet.keys import PrivateKey, PublicKey

EcdsaEncoding = Literal["raw", "der"]
_P256_BYTES = 32
# mender-artifact takes a DER ECDSA signature only when it is 70 to 72 bytes long.
_DER_LENGTHS = range(70, 73)


def _unsupported(key: object) -> ArtifactError:
    return ArtifactError(
        f"{type(key).__name__.lstrip('_').removesuffix('PrivateKey').removesuffix('PublicKey')} "
        "keys cannot sign Mender artifacts "
        "(RSA or ECDSA P-256 only)",
        kind="unsupported",
    )


def check_signing_key(key: PrivateKey) -> None:
    """Refuse, before any work is done, a key that cannot sign an artifact."""
    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    p256_key = isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    if not (rsa_key or p256_key):
        raise _unsupported(key)


def sign_manifest(
    key: PrivateKey, manifest: bytes, *, ecdsa_encoding: EcdsaEncoding = "raw"
) -> bytes:
    """The content of manifest.sig for `manifest`."""
    check_signing_key(key)
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(manifest, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = _sign_ecdsa(key, manifest, ecdsa_encoding)  # type: ignore[arg-type]
    return base64.b64encode(signature)


def _sign_ecdsa(key: ec.EllipticCurvePrivateKey, manifest: bytes, encoding: EcdsaEncoding) -> bytes:
    while True:
        der = key.sign(manifest, ec.ECDSA(hashes.SHA256()))
        if encoding == "der":
            if len(der) in _DER_LENGTHS:
                return der
            continue  # short r or s: re-sign (ECDSA is randomised) so every reader accepts it
        r, s = decode_dss_signature(der)
        return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")


def verify_manifest(key: PublicKey, manifest: bytes, signature_b64: bytes) -> bool:
    """Whether manifest.sig is a valid signature of `manifest` by `key`."""
    try:
        signature = base64.b64decode(signature_b64.strip(), validate=True)
    except binascii.Error:
        raise ArtifactError(
            "Failed to verify the manifest signature: signature is not valid base64",
            kind="signature",
        ) from None
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, manifest, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            if len(signature) == 2 * _P256_BYTES:
                r = int.from_bytes(signature[:_P256_BYTES], "big")
                s = int.from_bytes(signature[_P256_BYTES:], "big")
                signature = encode_dss_signature(r, s)
            key.verify(signature, manifest, ec.ECDSA(hashes.SHA256()))
        else:
            raise _unsupported(key)
    except (InvalidSignature, ValueError):
        return False
    return True
