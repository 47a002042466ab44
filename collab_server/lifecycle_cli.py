"""``collab-server keys ...``: master-key generation, rotation and verification (offline or live).

These commands open the store named by ``--store`` (or NOVA_STORE) directly, so they work
beside running hubs: rotation re-wraps data keys with compare-and-set, and verification
only reads.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from collab_server.settings import Settings
from persistence.base import StoreError
from persistence.encryption.keys import KeyProvider, MasterKeyError, key_provider, new_key_entry
from persistence.encryption.store import rotate_master_key, verify_store
from persistence.factory import store_from_url


def add_key_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], defaults: Settings
) -> None:
    keys = commands.add_parser(
        "keys",
        help="encryption at rest: generate, rotate and verify master keys",
        description="Master keys wrap the per-document data keys. Rotation: put the new key first "
        "in the key file (hubs re-read it), run 'keys rotate', then drop the old key.",
    )
    actions = keys.add_subparsers(dest="keys_command", required=True)
    generate = actions.add_parser("generate", help="print a new ID:BASE64 master key entry")
    generate.add_argument("--id", default="k1", help="the key's id (k1)")
    for name, text in (
        ("rotate", "re-wrap every data key with the current (first) master key"),
        ("verify", "check that every stored row opens with the configured keys"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("--store", default=defaults.store, help=f"store URL ({defaults.store!r})")
        action.add_argument(
            "--master-key-file",
            default=defaults.master_key_file,
            help="master key file (NOVA_MASTER_KEY_FILE)",
        )
        action.add_argument("--master-keys", default=defaults.master_keys, help="or NOVA_MASTER_KEYS")


def keys_command(args: argparse.Namespace) -> int:
    if args.keys_command == "generate":
        try:
            print(new_key_entry(args.id))
        except MasterKeyError as exc:
            print(f"collab-server: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        keys = key_provider(args.master_key_file, args.master_keys)
    except MasterKeyError as exc:
        print(f"collab-server: {exc}", file=sys.stderr)
        return 2
    if keys is None:
        print("collab-server: give --master-key-file or NOVA_MASTER_KEYS", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run_keys(args.keys_command, args.store, keys))
    except (StoreError, MasterKeyError, ValueError) as exc:
        print(f"collab-server: {exc}", file=sys.stderr)
        return 1


async def _run_keys(command: str, url: str, keys: KeyProvider) -> int:
    store = store_from_url(url, keys)
    await store.open()
    try:
        if command == "rotate":
            rewrapped, unchanged = await rotate_master_key(store, keys)
            print(
                f"re-wrapped {rewrapped} data keys with master key {keys.current().id!r}; "
                f"{unchanged} were already current"
            )
            return 0
        report = await verify_store(store, keys)
        for failure in report.failures:
            print(f"UNREADABLE {failure}")
        print(f"{report.documents} documents, {report.rows} rows checked, {len(report.failures)} unreadable")
        return 1 if report.failures else 0
    finally:
        await store.close()
