"""`mendersim artifact make` and `mendersim artifact verify`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mendersim.artifact.compression import EXTENSIONS
from mendersim.artifact.format import ArtifactError, ArtifactInfo, AugmentInfo
from mendersim.artifact.reader import read_artifact
from mendersim.artifact.writer import ROOTFS_IMAGE, write_artifact
from mendersim.errors import ConfigError
from mendersim.fleet import keys
from mendersim.units import parse_size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("artifact", help="write or verify Mender artifacts (format v3)")
    commands = parser.add_subparsers(dest="artifact_command", required=True, metavar="ACTION")

    make = commands.add_parser("make", help="write an artifact with a generated payload")
    make.add_argument("--name", required=True, help="artifact_name it provides")
    make.add_argument(
        "--device-type", "-t", action="append", required=True, dest="device_types",
        metavar="TYPE", help="compatible device type (repeat for several)",
    )  # fmt: skip
    make.add_argument("--size", default="1MiB", help="payload size: bytes or 10M, 512KiB, 1G")
    make.add_argument("--type", default=ROOTFS_IMAGE, dest="update_type", help="payload type")
    make.add_argument("--payload-name", default="rootfs.img", help="file name in the payload")
    make.add_argument("--compression", choices=list(EXTENSIONS), default="gzip")
    make.add_argument("--sign-key", type=Path, metavar="PEM", help="RSA or ECDSA P-256 key")
    make.add_argument("--seed", type=int, default=0, help="payload generator seed")
    make.add_argument("-o", "--output", type=Path, help="output file (default NAME.mender)")
    make.set_defaults(func=make_command)

    verify = commands.add_parser("verify", help="read an artifact and check everything in it")
    verify.add_argument("file", type=Path, metavar="FILE")
    verify.add_argument("--key", type=Path, metavar="PEM", help="public key to verify with")
    verify.add_argument("--device-type", metavar="TYPE", help="device type that must match")
    verify.set_defaults(func=verify_command)


def _load_key(path: Path, option: str, load: Callable[[bytes], Any]) -> Any:
    """Read a PEM key file for `option`, naming the option and path in any error."""
    try:
        return load(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{option} {path}", exc.strerror or str(exc)) from None
    except keys.InvalidKeyError as exc:
        raise ConfigError(f"{option} {path}", str(exc)) from None


def make_command(args: argparse.Namespace) -> int:
    size = parse_size(args.size, "--size", zero_ok=True)  # mender-artifact takes empty files
    sign_key = None
    if args.sign_key is not None:
        sign_key = _load_key(args.sign_key, "--sign-key", keys.load_private)
    output = args.output or Path(f"{args.name}.mender")
    try:
        info = write_artifact(
            output, name=args.name, device_types=args.device_types, payload_size=size,
            update_type=args.update_type, payload_name=args.payload_name,
            compression=args.compression, sign_key=sign_key, seed=args.seed,
        )  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"-o {output}", exc.strerror or str(exc)) from None
    signed = f", signed ({keys.key_type_of(sign_key)})" if sign_key is not None else ""
    print(
        f"wrote {output}: {info.name} ({info.update_type}) for {', '.join(info.device_types)}, "
        f"payload {size} bytes, {info.compression}, {info.size} bytes{signed}"
    )
    return 0


def _listed(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _augment_lines(augment: AugmentInfo) -> list[str]:
    """What header-augment (outside the signature) contributed to the figures above."""
    clears = augment.clears_provides
    return [
        f"Augmented header (not signed): type {augment.update_type or '(unchanged)'}",
        "  Provides:",
        *(f"    {key}: {value}" for key, value in sorted(augment.provides.items())),
        "  Depends:",
        *(f"    {key}: {_listed(value)}" for key, value in sorted(augment.depends.items())),
        f"  Clears provides: {'(original)' if clears is None else ', '.join(clears)}",
        f"  Meta-data: {json.dumps(augment.meta_data, sort_keys=True)}",
        f"  Payload files: {', '.join(augment.files)}",
    ]


def describe(info: ArtifactInfo) -> str:
    """The human-readable summary `verify` prints."""
    lines = [
        f"Name: {info.name}",
        f"Format: {info.format} v{info.version}",
        f"Type: {info.update_type or '(empty payload)'}",
        f"Compatible devices: {', '.join(info.device_types)}",
        f"Compression: {info.compression}",
        f"Signature: {info.signature}",
        "Provides:",
        *(f"  {key}: {value}" for key, value in sorted(info.provides.items())),
        "Clears provides:",
        *(f"  {pattern}" for pattern in info.clears_provides),
        "Depends:",
        *(f"  {key}: {_listed(value)}" for key, value in sorted(info.depends.items())),
        "Payload files:",
        *(f"  {f.name}: {f.size} bytes, sha256 {f.sha256}" for f in info.payload_files),
    ]
    if info.meta_data:
        lines.append(f"Meta-data: {json.dumps(info.meta_data, sort_keys=True)}")
    if info.scripts:
        lines += ["State scripts:", *(f"  {name}" for name in info.scripts)]
    if info.augment is not None:
        lines += _augment_lines(info.augment)
    lines.append(f"Size: {info.size} bytes")
    return "\n".join(lines)


def verify_command(args: argparse.Namespace) -> int:
    key = None
    if args.key is not None:
        key = _load_key(args.key, "--key", keys.load_public)
    try:
        handle = args.file.open("rb")
    except OSError as exc:
        raise ConfigError(str(args.file), exc.strerror or str(exc)) from None
    with handle:
        try:
            info = read_artifact(
                handle, verify_key=key, device_type=args.device_type, accept_augmented=True
            )
        except ArtifactError as exc:
            raise ArtifactError(f"{args.file}: {exc}", kind=exc.kind) from None
    sys.stdout.write(describe(info) + "\n")
    print(f"Artifact file '{args.file}' validated successfully")
    return 0
