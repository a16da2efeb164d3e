"""Artifacts built member by member, each breaking one rule of the v3 format: the reader refuses
each with the words the Mender client uses, and accepts what the client accepts."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile

import pytest

from mendersim.artifact import compression
from mendersim.artifact.reader import ArtifactError, read_artifact
from mendersim.artifact.signing import verify_manifest
from mendersim.artifact.streams import ChunkReader
from mendersim.fleet import keys

PAYLOAD = b"rootfs bytes " * 100
INFO = {
    "payloads": [{"type": "rootfs-image"}],
    "artifact_provides": {"artifact_name": "grammar"},
    "artifact_depends": {"device_type": ["d"]},
}
TYPE_INFO = {"type": "rootfs-image"}
VERSION = json.dumps({"format": "mender", "version": 3}).encode()


def _tar(members: list[tuple[str, bytes | None]]) -> bytes:
    """An uncompressed tar; a member whose content is None is a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _header(info: dict | None = None, extra: list | None = None, *, type_info=True) -> list:
    members = [("header-info", json.dumps(info or INFO).encode())]
    if type_info:
        members.append(("headers/0000/type-info", json.dumps(TYPE_INFO).encode()))
    return members + (extra or [])


def _artifact(
    *,
    version: bytes = VERSION,
    header: list | None = None,
    data: list | None = None,
    manifest_edit=lambda text: text,
    leave_out: tuple[str, ...] = (),
) -> bytes:
    header_tar = _tar(header if header is not None else _header())
    files = data if data is not None else [("rootfs.img", PAYLOAD)]
    sums = {"version": version, "header.tar": header_tar}
    sums |= {f"data/0000/{n}": c for n, c in files if c is not None}
    manifest = "".join(
        f"{hashlib.sha256(c).hexdigest()}  {n}\n"
        for n, c in sorted(sums.items())
        if n not in leave_out
    )
    manifest += "".join(f"{'0' * 64}  data/0000/{n}\n" for n, c in files if c is None)
    return _tar(
        [
            ("version", version),
            ("manifest", manifest_edit(manifest).encode()),
            ("header.tar", header_tar),
            ("data/0000.tar", _tar(files)),
        ]
    )


def _refused(data: bytes) -> ArtifactError:
    with pytest.raises(ArtifactError) as caught:
        read_artifact(io.BytesIO(data))
    return caught.value


def test_the_built_artifact_reads_and_blank_manifest_lines_are_skipped():
    info = read_artifact(io.BytesIO(_artifact(manifest_edit=lambda t: "\n" + t + "\n\n")))
    assert (info.name, info.update_type, info.device_types) == ("grammar", "rootfs-image", ["d"])
    (payload,) = info.payload_files
    assert payload.sha256 == hashlib.sha256(PAYLOAD).hexdigest()


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (b"{not json", "invalid JSON"),
        (b"[3]", "expected a JSON object"),
        (b" " * ((1 << 20) + 1), "version is too large"),
    ],
)
def test_a_version_member_that_is_no_small_json_object_is_refused(version, message):
    assert message in str(_refused(_artifact(version=version)))


def test_a_member_that_is_not_a_file_is_refused():
    data = _tar([("version", VERSION), ("manifest", None)])
    error = _refused(data)
    assert str(error) == "expected a regular file (manifest)"


def test_a_file_the_manifest_does_not_list_is_refused():
    error = _refused(_artifact(leave_out=("version",)))
    assert str(error) == "Payload: checksum missing for file: version (manifest)"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ([], "Failed to parse the header: Got unexpected token: 'EOF' expected 'header-info'"),
        ([("headers/0000/type-info", b"{}")], "Got unexpected token: 'headers/0000/type-info'"),
        (_header(extra=[("notes.txt", b"x")]), "Unexpected entry: notes.txt"),
        (_header(extra=[("headers/0001/type-info", b"{}")]), "Multiple header entries found"),
        (_header(type_info=False), "type-info files number not equal to payloads number"),
    ],
)
def test_headers_out_of_the_grammar_are_refused(header, message):
    assert message in str(_refused(_artifact(header=header)))


def test_an_empty_payload_artifact_with_payload_files_is_refused():
    info = {**INFO, "payloads": [{"type": None}]}
    header = [("header-info", json.dumps(info).encode()), ("headers/0000/type-info", b"{}")]
    error = _refused(_artifact(header=header))
    assert str(error) == "Empty Payload Artifacts cannot have a payload"


def test_a_payload_entry_that_is_not_a_file_is_refused():
    error = _refused(_artifact(data=[("rootfs.img", PAYLOAD), ("subdir", None)]))
    assert str(error) == "expected a regular file (data/0000/subdir)"


def test_a_signature_that_is_not_base64_is_refused(rsa_key: keys.PrivateKey):
    with pytest.raises(ArtifactError, match="signature is not valid base64") as caught:
        verify_manifest(rsa_key.public_key(), b"manifest", b"not base64!")
    assert caught.value.kind == "signature"


def test_a_key_type_artifacts_are_not_signed_with_is_refused():
    ed25519 = keys.generate("ed25519").public_key()
    signature = base64.b64encode(b"x" * 64)
    with pytest.raises(ArtifactError, match="Ed25519 keys cannot sign Mender artifacts"):
        verify_manifest(ed25519, b"manifest", signature)


@pytest.mark.parametrize("name", ["none", "gzip", "xz", "zstd"])
def test_compressing_into_a_callers_file_leaves_it_open(name):
    target = io.BytesIO()
    packer = compression.compressor(name, target)
    packer.write(PAYLOAD[:500])
    packer.flush()  # a flush mid-stream reaches the caller's file and leaves the stream whole
    packer.write(PAYLOAD[500:])
    packer.close()
    assert not target.closed
    target.seek(0)
    assert compression.decompressor(name, target).read() == PAYLOAD


def test_chunks_read_through_a_buffered_reader_are_the_bytes():
    chunks = [PAYLOAD[:100], PAYLOAD[100:]]
    assert io.BufferedReader(ChunkReader(chunks)).read() == PAYLOAD


def test_every_der_signature_has_a_length_every_reader_accepts(ecdsa_key: keys.PrivateKey):
    """ECDSA is randomised: about one DER signature in 128 is shorter than the 70 to 72 bytes
    mender-artifact accepts; the writer signs again until it fits. 2,000 signatures make a
    short one all but certain to have come up."""
    from mendersim.artifact.signing import sign_manifest

    lengths = set()
    for n in range(2000):
        manifest = f"manifest {n}".encode()
        signature = sign_manifest(ecdsa_key, manifest, ecdsa_encoding="der")
        assert verify_manifest(ecdsa_key.public_key(), manifest, signature)
        lengths.add(len(base64.b64decode(signature)))
    assert lengths <= {70, 71, 72}
