"""`mendersim preauthorize`: the seeded identities and public keys, pre-authorized on a server.

What a Mender user does before devices first connect to a server with pre-authorization
(`--acceptance preauth`, or hosted Mender without auto-acceptance). Idempotent and resumable:
identities the server already knows, in any status, are skipped, so running it again after an
interruption only sends what is missing. The token comes from a file or the environment,
never from the command line (every user of the machine can read a command line).
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from mendersim.errors import ConfigError
from mendersim.fleet.store import SeedStore
from mendersim.mender_api.management import ManagementClient, MenderApiError
from mendersim.mender_api.tokens import management_token

PAGE = 500
TOKEN_VARIABLES = ("MENDERSIM_MGMT_TOKEN", "MENDER_TOKEN")


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "preauthorize",
        help="pre-authorize a seed store's devices on a Mender server",
        description="Pre-authorize every device of a seed store (identity data and public key) "
        "through the management API. Devices the server already knows are skipped: running it "
        "again completes an interrupted run. The management token (a personal access token on "
        "hosted Mender) comes from --token-file, else $MENDERSIM_MGMT_TOKEN or $MENDER_TOKEN.",
    )
    command.add_argument("db", help="seed store file")
    command.add_argument(
        "--host", required=True, help="server base URL, e.g. https://hosted.mender.io"
    )
    command.add_argument("--token-file", default="", help="file holding the management token")
    command.add_argument("--profiles", default="", help="comma-separated profile filter")
    command.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    command.set_defaults(func=run_preauthorize)


def known_identities(management: ManagementClient) -> set[str]:
    """Identity keys (sorted, compact) of every device the server holds, in any status."""
    from mendersim.harness.coordination.rollout import identity_key

    known: set[str] = set()
    page = 1
    while True:
        chunk = management.list_devices(page=page, per_page=PAGE)
        known.update(identity_key(device.get("identity_data", {})) for device in chunk)
        if len(chunk) < PAGE:
            return known
        page += 1


def run_preauthorize(args: argparse.Namespace) -> int:
    token = management_token(args.token_file, TOKEN_VARIABLES, "--token-file")
    if not args.host.startswith(("http://", "https://")):
        raise ConfigError("--host", f"{args.host!r} is not an http(s) URL")
    management = ManagementClient(args.host, token)
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()] or None
    known = known_identities(management)
    added = skipped = 0
    with SeedStore.open(args.db) as store:
        total = len(store.device_ids(profiles))
        bar = tqdm(
            total=total,
            unit="dev",
            desc="preauthorize",
            disable=args.quiet or not sys.stderr.isatty(),
        )
        offset = 0
        while chunk := store.load_devices(profiles=profiles, offset=offset, limit=PAGE):
            offset += len(chunk)
            for record in chunk:
                if record.id_data_json() in known:
                    skipped += 1
                else:
                    try:
                        management.preauthorize(record.id_data, record.public_key_pem)
                        added += 1
                    except MenderApiError as exc:
                        if exc.status != 409:  # 409: known since the listing
                            raise
                        skipped += 1
                bar.update(1)
        bar.close()
    if not args.quiet:
        print(f"{args.host}: {added} devices pre-authorized, {skipped} already known")
    return 0
