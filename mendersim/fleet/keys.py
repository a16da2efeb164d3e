"""Device keys: generation at seed time, Mender-exact signing and verification.

Mender signs the raw auth-request body: RSA with PKCS#1 v1.5 over SHA-256, ECDSA P-256 over
SHA-256 encoded as ASN.1 DER, Ed25519 over the raw bytes. The server side of the same rules lives
here too, so the embedded server and the devices can never disagree.
"""

from __future__ import annotations

import base64
import secrets
from typing import Literal, get_args

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from mendersim.errors import MendersimError

KeyType = Literal["rsa2048", "rsa3072", "rsa4096", "ecdsa-p256", "ed25519"]
KEY_TYPES: tuple[str, ...] = get_args(KeyType)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_RSA_BITS = {"rsa2048": 2048, "rsa3072": 3072, "rsa4096": 4096}


class InvalidKeyError(MendersimError, ValueError):
    """A key that cannot be read or is of a kind Mender does not accept."""


def generate(key_type: str) -> PrivateKey:
    """Make a new private key; RSA is slow (tens of ms), so this runs at seed time only."""
    if key_type in _RSA_BITS:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[key_type])
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise InvalidKeyError(f"unknown key type {key_type!r} (expected one of {', '.join(KEY_TYPES)})")


# RFC 8410 PKCS#8 of an Ed25519 key: this DER header, then the 32-byte private key.
_ED25519_PKCS8_HEADER = bytes.fromhex("302e020100300506032b657004220420")


def new_private_pem(key_type: str) -> bytes:
    """A new private key as the device keeps it on disk (PKCS#8 PEM), at seed time.

    An Ed25519 private key is 32 random bytes: written straight into its PKCS#8 form, it costs
    no curve arithmetic; the public key is derived when the device first sends it."""
    if key_type != "ed25519":
        return private_pem(generate(key_type))
    body = base64.b64encode(_ED25519_PKCS8_HEADER + secrets.token_bytes(32))
    return b"-----BEGIN PRIVATE KEY-----\n" + body + b"\n-----END PRIVATE KEY-----\n"


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: PrivateKey | PublicKey) -> str:
    """The SubjectPublicKeyInfo PEM Mender expects in `pubkey`."""
    public = key.public_key() if hasattr(key, "private_bytes") else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_private(pem: bytes, *, trusted: bool = True) -> PrivateKey:
    """Load a private key; `trusted` skips RSA validation (44 ms → 0.012 ms) for store keys."""
    try:
        key = serialization.load_pem_private_key(
            pem, password=None, unsafe_skip_rsa_key_validation=trusted
        )
    except (ValueError, TypeError) as exc:
        raise InvalidKeyError(f"cannot read private key: {exc}") from None
    _check_supported(key)
    return key  # type: ignore[return-value]


def load_public(pem: str | bytes) -> PublicKey:
    """Load an SPKI public key as the server does, refusing kinds Mender does not accept."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InvalidKeyError(f"cannot read public key: {exc}") from None
    _check_supported(key)
    return key  # type: ignore[return-value]


def key_type_of(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ecdsa-p256"
    return "ed25519"


def _check_supported(key: object) -> None:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size < 2048:
            raise InvalidKeyError(f"RSA key of {key.key_size} bits is too short (2048 at least)")
        return
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if not isinstance(key.curve, ec.SECP256R1):
            raise InvalidKeyError(f"ECDSA curve {key.curve.name} is not supported (P-256 only)")
        return
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return
    raise InvalidKeyError(f"unsupported key kind {type(key).__name__}")


def sign(key: PrivateKey, data: bytes) -> bytes:
    """Sign `data` exactly as the Mender client signs an auth request."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))  # DER SEQUENCE{r, s}
    return key.sign(data)


def sign_b64(key: PrivateKey, data: bytes) -> str:
    """The value of the X-MEN-Signature header."""
    return base64.b64encode(sign(key, data)).decode("ascii")


def verify(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Check a signature as Mender's deviceauth does (raw r‖s ECDSA is rejected)."""
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True
