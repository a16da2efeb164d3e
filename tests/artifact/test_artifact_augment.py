"""Augmented artifacts (`manifest-augment`, `header-augment.tar.<ext>`) as mender-artifact 4.4.0
reads them, from artifacts Debian's mender-artifact writes now and from variants re-packed here to
break one rule each. The C++ client's refusal is the device's."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from mendersim.artifact import compression
from mendersim.artifact.format import ArtifactError
from mendersim.artifact.reader import TYPE_INFO_MISMATCH, read_artifact
from mendersim.artifact.tarstream import write_end, write_member
from mendersim.cli import main
from mendersim.fleet import keys

Members = list[tuple[str, bytes]]
MENDER_ARTIFACT = shutil.which("mender-artifact") or "/usr/bin/mender-artifact"


def _members(data: bytes, comp: str = "none") -> Members:
    raw = compression.decompressor(comp, io.BytesIO(data))
    with tarfile.open(fileobj=raw, mode="r|") as tar:  # type: ignore[call-overload]
        return [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]


def _pack(members: Members, comp: str = "none") -> bytes:
    buffer = io.BytesIO()
    packer = compression.compressor(comp, buffer)
    for name, content in members:
        write_member(packer, name, content, len(content), 0o600)
    write_end(packer)
    packer.close()
    return buffer.getvalue()


def _manifest(entries: dict[str, bytes]) -> bytes:
    return "".join(
        f"{hashlib.sha256(c).hexdigest()}  {n}\n" for n, c in sorted(entries.items())
    ).encode()


def _repack(
    data: bytes, comp: str, *, augment_header=None, header=None, order=None, extra_augment=None
):
    """The artifact again, `comp`-compressed, its headers' members edited by `header` and
    `augment_header` (members -> members) and both manifests recomputed, unsigned."""
    outer = dict(_members(data))
    old = next(n for n in outer if n.startswith("header.tar")).partition(".tar")[2]
    old_comp = compression.name_of_suffix(old)
    ext = compression.EXTENSIONS[comp]
    header_members = _members(outer[f"header.tar{old}"], old_comp)
    header = _pack((header or (lambda m: m))(header_members), comp)
    augment_members = _members(outer[f"header-augment.tar{old}"], old_comp)
    augment = _pack((augment_header or (lambda m: m))(augment_members), comp)
    payload = _members(outer[f"data/0000.tar{old}"], old_comp)
    files = {f"data/0000/{n}": c for n, c in payload}
    augmented_names = {
        line.split("  ")[1] for line in outer["manifest-augment"].decode().split("\n") if line
    }
    version = outer["version"]
    manifest = _manifest(
        {"version": version, f"header.tar{ext}": header}
        | {n: c for n, c in files.items() if n not in augmented_names}
    )
    manifest_augment = _manifest(
        {f"header-augment.tar{ext}": augment}
        | {n: c for n, c in files.items() if n in augmented_names}
        | (extra_augment or {})
    )
    members = {
        "version": version, "manifest": manifest, "manifest-augment": manifest_augment,
        f"header.tar{ext}": header, f"header-augment.tar{ext}": augment,
        f"data/0000.tar{ext}": _pack(payload, comp),
    }  # fmt: skip
    return _pack([(n, members[n]) for n in (order or members)])


@pytest.fixture(scope="module")
def augmented(mender_tool_artifacts: Path) -> bytes:
    return (mender_tool_artifacts / "augmented.mender").read_bytes()


def _read(data: bytes, **options) -> object:
    return read_artifact(io.BytesIO(data), accept_augmented=True, **options)


def test_augmented_fields_merge_as_mender_artifact_reads_them(augmented: bytes) -> None:
    info = _read(augmented, device_type="qemux86-64")
    assert info.update_type == "delta"
    assert info.provides == {
        "artifact_name": "delta-1",
        "rootfs-image.delta.version": "delta-1",
        "rootfs-image.delta.source": "1.0",
    }
    assert info.depends == {"device_type": ["qemux86-64"], "rootfs-image.checksum": "ab12"}
    assert info.meta_data == {
        "source": {"name": "base", "checksum": "c0ffee"}, "chunks": [1], "level": 3,
    }  # fmt: skip
    assert info.clears_provides == ["rootfs-image.delta.*"]
    assert [f.name for f in info.payload_files] == ["delta.bin", "patch.bin"]
    assert info.augment is not None and info.augment.files == ["patch.bin"]
    assert info.augment.provides == {"rootfs-image.delta.source": "1.0"}


def test_the_merge_agrees_with_mender_artifact_read(
    augmented: bytes, mender_tool_artifacts: Path
) -> None:
    shown = subprocess.run(
        [MENDER_ARTIFACT, "read", str(mender_tool_artifacts / "augmented.mender")],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    metadata = shown.split("Metadata:", 1)[1].split("Files:", 1)[0]
    assert json.loads(metadata) == _read(augmented).meta_data
    for key, value in _read(augmented).provides.items():
        if key != "artifact_name":
            assert f"{key}: {value}" in shown


def test_verify_shows_the_augmented_header(mender_tool_artifacts: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["artifact", "verify", str(mender_tool_artifacts / "augmented.mender")]) == 0
    text = out.getvalue()
    assert "Augmented header (not signed): type delta" in text
    assert "    rootfs-image.delta.source: 1.0" in text
    assert "    rootfs-image.checksum: ab12" in text
    assert '  Meta-data: {"level": 3, "source": {"checksum": "c0ffee"}}' in text
    assert "  Payload files: patch.bin" in text
    assert "validated successfully" in text


def _edit_augment(data: bytes, edit, *, update_checksum: bool = True) -> bytes:
    """The artifact with only its augmented header edited (and, unless told not to, its line in
    manifest-augment): version, manifest, manifest.sig, header and data stay byte for byte."""
    outer = _members(data)
    names = dict(outer)
    augment = _pack(edit(_members(names["header-augment.tar.gz"], "gzip")), "gzip")
    lines = names["manifest-augment"].decode().splitlines()
    if update_checksum:
        line = f"{hashlib.sha256(augment).hexdigest()}  header-augment.tar.gz"
        lines = [line if x.endswith("  header-augment.tar.gz") else x for x in lines]
    replaced = {
        "header-augment.tar.gz": augment,
        "manifest-augment": "\n".join(lines).encode() + b"\n",
    }
    return _pack([(n, replaced.get(n, c)) for n, c in outer])


def test_the_signature_leaves_the_augmented_header_out(tmp_path: Path, mender_tool_artifacts):
    key = keys.generate("rsa2048")
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ))  # fmt: skip
    signed = tmp_path / "signed.mender"
    source = mender_tool_artifacts
    subprocess.run(
        [MENDER_ARTIFACT, "write", "module-image", "-T", "delta", "-n", "signed-delta",
         "-t", "qemux86-64", "-f", str(source / "delta.bin"), "--augment-type", "delta",
         "--augment-file", str(source / "patch.bin"),
         "--augment-meta-data", str(source / "meta-augment.json"),
         "-k", str(tmp_path / "key.pem"), "-o", str(signed)],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    data = signed.read_bytes()
    assert [n for n, _ in _members(data)][:5] == [
        "version",
        "manifest",
        "manifest.sig",
        "manifest-augment",
        "header.tar.gz",
    ]
    info = _read(data, verify_key=key.public_key())
    assert info.signature == "verified" and info.meta_data == {
        "source": {"checksum": "c0ffee"}, "level": 3,
    }  # fmt: skip
    later = _edit_augment(data, _meta_data({"level": 4}))
    after = _read(later, verify_key=key.public_key())
    assert after.signature == "verified" and after.meta_data == {"level": 4}
    with pytest.raises(ArtifactError) as refused:
        _read(_edit_augment(data, _meta_data({"level": 4}), update_checksum=False))
    assert refused.value.kind == "checksum" and refused.value.member == "header-augment.tar.gz"


@pytest.mark.parametrize("comp", ["none", "gzip", "xz"])
def test_repacked_augmented_artifacts_read_in_every_compression(augmented: bytes, comp: str):
    info = _read(_repack(augmented, comp))
    assert info.compression == comp and info.augment is not None
    assert info.provides["rootfs-image.delta.source"] == "1.0"


def test_zstd_augmented_header_is_refused_as_mender_artifact_refuses_it(augmented: bytes):
    with pytest.raises(ArtifactError, match="found unexpected file in artifact: header-augment"):
        _read(_repack(augmented, "zstd"))


def test_the_device_refuses_augmented_artifacts_as_the_cpp_client(augmented: bytes) -> None:
    with pytest.raises(ArtifactError) as refused:
        read_artifact(io.BytesIO(augmented), device_type="qemux86-64")
    assert str(refused.value) == (
        "Got unexpected token Unrecognized expected 'Header' (manifest-augment)"
    )
    assert refused.value.kind == "unsupported"


def _type_info(update_type: str):
    def edit(members: Members) -> Members:
        return [
            (n, json.dumps({**json.loads(c), "type": update_type}).encode())
            if n.endswith("type-info") else (n, c)
            for n, c in members
        ]  # fmt: skip

    return edit


def _meta_data(value: dict):
    def edit(members: Members) -> Members:
        return [(n, json.dumps(value).encode()) if n.endswith("meta-data") else (n, c)
                for n, c in members]  # fmt: skip

    return edit


def test_an_augmented_type_info_must_name_its_header_info_type(augmented: bytes) -> None:
    with pytest.raises(ArtifactError, match=TYPE_INFO_MISMATCH.split(":")[0]):
        _read(_repack(augmented, "gzip", augment_header=_type_info("other")))


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"source": "flat"}, "source: Type conflict: object/non-object"),
        ({"chunks": {"a": 1}}, "chunks: Cannot combine JSON object with non-object."),
        ({"source": {"name": [1]}}, "source: name: Type conflict: list/non-list"),
    ],
)
def test_meta_data_that_cannot_merge_is_refused(augmented: bytes, meta: dict, message: str):
    with pytest.raises(ArtifactError) as refused:
        _read(_repack(augmented, "gzip", augment_header=_meta_data(meta)))
    assert str(refused.value) == message


def test_scripts_are_not_allowed_in_the_augmented_header(augmented: bytes) -> None:
    def with_script(members: Members) -> Members:
        return [*members[:1], ("scripts/ArtifactInstall_Enter_00", b"#!/bin/sh\n"), *members[1:]]

    with pytest.raises(ArtifactError, match='invalid header path "scripts/ArtifactInstall'):
        _read(_repack(augmented, "gzip", augment_header=with_script))


def test_out_of_grammar_orders_are_refused(augmented: bytes) -> None:
    swapped = ["version", "manifest", "manifest-augment", "header-augment.tar.gz",
               "header.tar.gz", "data/0000.tar.gz"]  # fmt: skip
    with pytest.raises(ArtifactError) as refused:
        _read(_repack(augmented, "gzip", order=swapped))
    assert str(refused.value) == (
        "Invalid structure: [manifest manifest-augment header-augment.tar.gz], "
        "wrong element: header-augment.tar.gz"
    )
    no_augment = ["version", "manifest", "manifest-augment", "header.tar.gz", "data/0000.tar.gz"]
    with pytest.raises(ArtifactError, match=r"wrong element: data/0000.tar.gz"):
        _read(_repack(augmented, "gzip", order=no_augment))


def test_an_augmented_artifact_cut_after_its_header_is_refused(augmented: bytes) -> None:
    cut = ["version", "manifest", "manifest-augment", "header.tar.gz"]
    with pytest.raises(ArtifactError, match="The artifact does not contain all required fields"):
        _read(_repack(augmented, "gzip", order=cut))


def test_an_augmented_header_after_the_payload_is_refused(augmented: bytes) -> None:
    late = ["version", "manifest", "manifest-augment", "header.tar.gz", "header-augment.tar.gz",
            "data/0000.tar.gz", "header-augment.tar.gz"]  # fmt: skip
    with pytest.raises(ArtifactError, match=r"wrong element: header-augment.tar.gz$"):
        _read(_repack(augmented, "gzip", order=late))


def test_an_augmented_header_over_an_empty_payload_is_refused(augmented: bytes) -> None:
    def untyped(members: Members) -> Members:
        edited = []
        for name, content in members:
            if name == "header-info":
                info = json.loads(content)
                info["payloads"] = [{"type": None}]
                content = json.dumps(info).encode()
            edited.append((name, content))
        return edited

    with pytest.raises(ArtifactError, match="Empty payload can not have augmented header"):
        _read(_repack(augmented, "gzip", augment_header=untyped))


def test_an_entry_in_both_manifests_is_refused(augmented: bytes) -> None:
    twice = _repack(
        augmented, "gzip", extra_augment={"version": b'{"format":"mender","version":3}'}
    )
    with pytest.raises(ArtifactError, match="checksum store: file already exists"):
        _read(twice)


def _as_rootfs(members: Members) -> Members:
    """Both header-info and type-info say rootfs-image instead of delta."""
    edited = []
    for name, content in members:
        if name in ("header-info", "headers/0000/type-info"):
            content = content.replace(b'"type":"delta"', b'"type":"rootfs-image"')
        edited.append((name, content))
    return edited


def test_a_rootfs_augment_replaces_provides_and_depends_and_keeps_the_meta_data(augmented):
    info = _read(_repack(augmented, "gzip", header=_as_rootfs, augment_header=_as_rootfs))
    assert info.update_type == "rootfs-image"
    # rootfs_image.go: the augmented type-info's alone, the original's are not merged in
    assert info.provides == {"artifact_name": "delta-1", "rootfs-image.delta.source": "1.0"}
    assert info.depends == {"device_type": ["qemux86-64"], "rootfs-image.checksum": "ab12"}
    assert info.meta_data == {"source": {"name": "base"}, "chunks": [1]}
