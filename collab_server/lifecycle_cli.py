"""Data-lifecycle commands.

``collab-server keys ...``: master-key generation, rotation and verification. These open
the store named by ``--store`` (or NOVA_STORE) directly, so they work beside running hubs:
rotation re-wraps data keys with compare-and-set, and verification only reads.

``collab-server archive`` (one pass, or ``--check``) and ``collab-server restore-archive``
(rebuild an empty store from the archive, verified document by document) work on the store
and the object store directly.

``collab-server documents ...``: delete, undelete, erase and list deleted documents through
a running hub's admin API (so live connections are closed and the token's role is checked).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from collab_server.settings import Settings
from persistence.archive.archiver import Archiver, check_archive, restore_store
from persistence.archive.base import ArchiveUnavailable, ObjectStore
from persistence.archive.factory import object_store_from_url
from persistence.archive.manifest import ArchiveCorrupt
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


def add_document_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], defaults: Settings
) -> None:
    documents = commands.add_parser(
        "documents",
        help="delete, undelete, erase documents through a running hub (admin token)",
        description="Soft delete hides a document (restorable during the grace period); erase "
        "removes its log, checkpoints, archive objects, search entries and data key for good.",
    )
    actions = documents.add_subparsers(dest="documents_command", required=True)
    for name, text in (
        ("delete", "soft-delete a document (restorable during the grace period)"),
        ("undelete", "restore a soft-deleted document"),
        ("erase", "erase a document for good (the audit log keeps the record)"),
        ("deleted", "list soft-deleted documents"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        if name != "deleted":
            action.add_argument("document", help="the document name")
        action.add_argument(
            "--hub", default=f"http://{defaults.host}:{defaults.port}", help="the hub's base URL"
        )
        action.add_argument("--token", default=None, help="an admin token (when auth is on)")


def documents_command(args: argparse.Namespace) -> int:
    base = args.hub.rstrip("/")
    if args.documents_command == "deleted":
        method, path = "GET", "/api/admin/deleted"
    else:
        quoted = urllib.parse.quote(args.document, safe="/")
        method, path = {
            "delete": ("DELETE", f"/api/documents/{quoted}"),
            "undelete": ("POST", f"/api/documents/{quoted}/undelete"),
            "erase": ("POST", f"/api/documents/{quoted}/erase"),
        }[args.documents_command]
    request = urllib.request.Request(base + path, method=method)
    if args.token:
        request.add_header("Authorization", f"Bearer {args.token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            print(json.dumps(json.loads(response.read()), indent=2))
            return 0
    except urllib.error.HTTPError as exc:
        print(f"collab-server: {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"collab-server: cannot reach {base}: {exc.reason}", file=sys.stderr)
        return 1


def _archive_options(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    parser.add_argument("--store", default=defaults.store, help=f"store URL ({defaults.store!r})")
    parser.add_argument("--archive", default=defaults.archive, help="archive URL (NOVA_ARCHIVE)")
    parser.add_argument(
        "--archive-access-key", default=defaults.archive_access_key, help="NOVA_ARCHIVE_ACCESS_KEY"
    )
    parser.add_argument(
        "--archive-secret-key", default=defaults.archive_secret_key, help="NOVA_ARCHIVE_SECRET_KEY"
    )


def add_archive_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], defaults: Settings
) -> None:
    archive = commands.add_parser(
        "archive",
        help="archive changed documents now (one pass), or --check the archive",
        description="Copy every document changed since its last archive to the object store "
        "(content-addressed objects, then a manifest per document). --check reads every manifest "
        "and object and checks their digests instead.",
    )
    _archive_options(archive, defaults)
    archive.add_argument("--check", action="store_true", help="verify the archive instead of writing to it")
    restore = commands.add_parser(
        "restore-archive",
        help="rebuild an empty store from the archive, verified document by document",
        description="Restore every archived document (history included, as stored: no keys needed) "
        "into the store named by --store, which must hold no documents, then compare each one with "
        "its archive. Exit code 0 only when every document is equal.",
    )
    _archive_options(restore, defaults)


def archive_command(args: argparse.Namespace) -> int:
    try:
        objects = object_store_from_url(args.archive, args.archive_access_key, args.archive_secret_key)
        if objects is None:
            print("collab-server: give --archive (or NOVA_ARCHIVE)", file=sys.stderr)
            return 2
        return asyncio.run(_run_archive(args.command, args, objects))
    except (StoreError, ArchiveUnavailable, ArchiveCorrupt, ValueError) as exc:
        print(f"collab-server: {exc}", file=sys.stderr)
        return 1


async def _run_archive(command: str, args: argparse.Namespace, objects: ObjectStore) -> int:
    await objects.open()
    store = store_from_url(args.store)  # rows as stored: ciphertext stays ciphertext, no keys needed
    await store.open()
    try:
        archiver = Archiver(store, objects)
        if command == "archive" and args.check:
            documents, problems = await check_archive(archiver)
            for problem in problems:
                print(f"DAMAGED {problem}")
            print(f"{documents} documents in the archive, {len(problems)} problems")
            return 1 if problems else 0
        if command == "archive":
            report = await archiver.run_pass()
            print(
                f"archived {report.documents} documents ({report.objects} objects, {report.bytes} bytes) "
                f"in {report.seconds:.2f}s; {report.unchanged} unchanged"
            )
            return 0
        if await store.list_documents() or await store.deleted_documents():
            print("collab-server: the target store is not empty; restore into an empty one", file=sys.stderr)
            return 1
        started = time.perf_counter()
        restored = await restore_store(archiver, store)
        for name in restored.mismatches:
            print(f"DIFFERENT {name!r}")
        print(
            f"restored {restored.documents} documents ({restored.rows} rows) in "
            f"{time.perf_counter() - started:.2f}s; {restored.verified} verified equal to the archive"
        )
        return 0 if restored.verified == restored.documents else 1
    finally:
        await store.close()
