"""``collab-server``: run the hub (``serve``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import fields

import redis.asyncio as aioredis
import uvicorn
from redis.exceptions import RedisError
from starlette.types import ASGIApp

from collab_server.app import create_app, store_options
from collab_server.auth import mint
from collab_server.gc_pacing import pace_collector
from collab_server.lifecycle_cli import (
    add_archive_commands,
    add_document_commands,
    add_key_commands,
    archive_command,
    documents_command,
    keys_command,
)
from collab_server.logs import configure_logging
from collab_server.native_socket import NativeWebSocketProtocol
from collab_server.settings import CHOICES, ENV_PREFIX, Settings, settings_from_env
from collab_server.tls import CertificateError, CertificateReloader, redis_tls_options
from collab_server.ws_protocol import LeanWebSocketProtocol
from persistence.base import StoreError
from persistence.encryption.keys import MasterKeyError, key_provider
from persistence.encryption.store import check_plaintext_mode
from persistence.factory import store_from_url
from persistence.redaction import redact_url

HELP: dict[str, str] = {
    "host": "interface to listen on",
    "port": "TCP port to listen on",
    "store": "where documents are kept: sqlite:///PATH (embedded default), memory, or postgresql://USER@HOST/DB",
    "redis_url": "Redis URL shared by hub nodes for scale-out (redis://HOST:PORT/DB); empty: single node",
    "redis_window_ms": "at most one Redis read and one publish per this many ms: busy documents cross nodes in"
    " batches (0: every message at once)",
    "redis_tls_ca_file": "CA certificate (PEM) that a rediss:// Redis must present a certificate from",
    "store_ssl_mode": "PostgreSQL TLS: disable, allow, prefer, require, verify-ca or verify-full (empty: the URL's)",
    "store_ssl_root_cert": "CA certificate (PEM) for PostgreSQL verify-ca / verify-full",
    "search": "semantic search: embedded (local chromadb), off, or a chromadb server http://HOST:PORT",
    "search_dir": "directory of the embedded search index (default: beside the SQLite store)",
    "search_interval_seconds": "how often changed documents are re-indexed (also the debounce)",
    "search_worker_max_mb": "restart the search worker process when its resident memory passes this (MiB)",
    "node_id": "name of this hub node in the update log and across nodes (default: random)",
    "durability": "strict: relay an update only after it is stored; relaxed: relay first, store right after",
    "group_commit_ms": "extra wait before a store commit to gather more updates (0: commit as soon as idle)",
    "max_unsaved_updates": "updates accepted but not yet stored before writes are refused (close 1013)",
    "commit_batch_max_updates": "most updates written in one store transaction",
    "store_retry_max_seconds": "longest wait between retries while the store is unreachable",
    "set_aside_seconds": "a document the store refuses is set aside this long (clients closed with 4500)",
    "join_wait_seconds": "longest wait of a joiner for the document's pending commits (then close 1013)",
    "merge_on_load_parts": "stored parts above which a load merges them in one step (native backend)",
    "off_loop_diff_bytes": "documents this large compute joiners' diffs in a worker thread",
    "max_early_remote_messages": "other nodes' messages buffered per document while it loads",
    "max_unapplied_remote_bytes": "other nodes' updates relayed but not yet integrated per document, at most",
    "maintenance_interval_seconds": "period of presence expiry, idle unload and token expiry checks",
    "store_check_interval_seconds": "period (and timeout) of the store health check behind /readyz",
    "revocation_refresh_seconds": "how often revocations are re-read from the store",
    "relay_window_ms": "longest wait to merge updates into one frame in a busy room (0: relay at once)",
    "relay_window_min_peers": "rooms with fewer connections relay every update at once",
    "relay_idle_load": "share of a core used by the hub below which every update is relayed at once",
    "relay_busy_load": "share of a core used by the hub from which the relay window is at its full size",
    "relay_lagging_ms": "a relay running this late means the loop is short of CPU: the window opens",
    "store_sync_interval_ms": "at most one store fsync per this many ms, covering every commit before it",
    "gc_full_collection_threshold": "middle-generation GC runs before a full collection (CPython: 10)",
    "store_first_retry_ms": "first wait before retrying a failing store write or fsync (then doubled)",
    "max_message_bytes": "largest WebSocket message accepted (close 1009 above it)",
    "max_documents": "documents held in memory at once (idle ones are unloaded to make room)",
    "max_connections_per_document": "connections one document accepts (close 4409 above it)",
    "max_messages_per_second": "sustained messages per second per connection (close 4429 above it)",
    "message_burst": "messages a connection may send in a burst above the sustained rate",
    "outbox_max_messages": "frames queued for one client before its queued updates are merged",
    "outbox_max_bytes": "bytes queued for one client after merging, besides the frame being added (one frame of"
    " any size always fits); above it the client is dropped (4408)",
    "max_awareness_state_bytes": "largest presence state of one client; larger ones are refused",
    "max_awareness_clients_per_connection": "presence client ids one connection may announce; more are refused",
    "max_awareness_entries_per_document": "presence entries one document holds; new ones beyond are refused",
    "max_awareness_bytes_per_document": "bytes of all presence states of one document; new states beyond are refused",
    "max_pending_bytes_per_connection": "bytes of one connection's updates held back for missing dependencies"
    " (close 4412 above)",
    "max_pending_bytes_per_document": "bytes of a document's updates held back for missing dependencies"
    " (the sender that crosses it is closed with 4412)",
    "max_documents_per_socket": "documents one Hocuspocus socket may open (the next gets close 4429)",
    "hocuspocus_inbox_messages": "messages one Hocuspocus document may have waiting (auth, loading); beyond: 4429",
    "large_frame_bytes": "frames this large (a big document for a joiner) are sent a few connections at a time",
    "large_frames_in_flight": "connections sending a large frame at once (the others wait, holding no copy)",
    "large_frame_drain_seconds": "longest a large frame holds its slot while the client reads it",
    "auth_secret": "HS256 secret that signs tokens; with neither this nor a key, auth is off",
    "auth_public_key_file": "PEM public key file for ES256/RS256 tokens",
    "auth_timeout_seconds": "a socket with no token in its URL or headers must send one in this time",
    "allowed_origins": "comma-separated origins allowed to open sockets and call the API; empty: any",
    "trusted_proxies": "addresses/networks (or *) whose X-Forwarded-For names the client; comma-separated",
    "max_connections_per_subject": "open connections one token subject may hold, with auth on (close 4429)",
    "max_connections_per_ip": "open connections from one client address (close 4429 above it)",
    "max_documents_per_subject": "distinct documents one subject may have open at once (close 4429)",
    "max_document_bytes": "largest encoded document; updates that would grow it further are refused (4413)",
    "master_key_file": "file of master keys (ID:BASE64 per line, current first) for encryption at rest",
    "archive": "archive to: a directory, file:///DIR or s3://BUCKET/PREFIX?endpoint=URL&region=R&path_style=true",
    "archive_access_key": "S3 access key id of the archive",
    "archive_secret_key": "S3 secret access key of the archive",
    "archive_interval_seconds": "how often documents changed since their last archive are archived",
    "checkpoint_retention_seconds": "prune checkpoints (old versions) older than this, keeping each document's newest; 0 keeps all",
    "tier_after_seconds": "move documents untouched this long out of the database into the archive (0: never)",
    "deletion_grace_seconds": "a soft-deleted document can be restored for this long, then it is erased",
    "store_max_connections": "PostgreSQL: connections in this node's pool at most",
    "store_connect_timeout_seconds": "PostgreSQL: bound on one connection attempt (also reconnects after an outage)",
    "store_command_timeout_seconds": "PostgreSQL: bound on one statement",
    "store_acquire_timeout_seconds": "PostgreSQL: longest wait for a free pooled connection (connecting included)",
    "store_busy_timeout_seconds": "SQLite: how long a write waits for another process holding the write lock",
    "max_http_body_bytes": "largest HTTP request body (413 body_too_large above it)",
    "max_sessions": "shared editor sessions this node keeps a lobby for (503 too_many_sessions beyond)",
    "max_session_join_requests": "unanswered join requests per shared session (429 too_many_requests beyond)",
    "max_session_guests": "approved guests per shared session (409 too_many_participants beyond)",
    "session_request_seconds": "an unanswered join request to a shared session is dropped after this",
    "session_guest_token_seconds": "lifetime of a guest token minted by a session's host",
    "master_keys": "master keys as ID:BASE64[,ID:BASE64...] (current first); alternative to the file",
    "tls_certfile": "PEM certificate chain: with --tls-keyfile the hub serves https:// and wss:// only",
    "tls_keyfile": "PEM private key of --tls-certfile",
    "tls_reload_seconds": "how often the certificate files are checked; a renewed pair is used without a restart",
    "grpc_port": "TCP port of the gRPC API (nova.collab.v1.Collab, health, reflection); 0: off",
    "grpc_host": "interface of the gRPC listener (default: --host)",
    "grpc_max_message_bytes": "largest gRPC message in either direction (RESOURCE_EXHAUSTED above it)",
    "grpc_max_streams_per_connection": "concurrent gRPC calls on one client connection (HTTP/2 streams)",
    "grpc_max_concurrent_calls": "concurrent gRPC calls on the listener; more are refused (RESOURCE_EXHAUSTED)",
    "idle_unload_seconds": "a document with no connections is unloaded after this many seconds",
    "awareness_flush_ms": "presence changes are batched over this window",
    "awareness_bytes_per_second": "presence bytes per second per document, shared by its connections (0: no pacing)",
    "awareness_timeout_seconds": "presence states not renewed for this long are removed",
    "ping_interval_seconds": "WebSocket ping interval; a silent peer is dropped after interval + timeout",
    "ping_timeout_seconds": "how long to wait for a pong",
    "shutdown_timeout_seconds": "bound on the whole graceful shutdown (flush, compactions, audit)",
    "metrics_token": "a scraper sending this as a Bearer token sees per-document series on /metrics",
    "http_commit_timeout_seconds": "strict durability: how long an HTTP write waits for its commit (then 503)",
    "compact_after_updates": "compact a document's stored log once its tail has this many updates",
    "compact_after_bytes": "compact a document's stored log once its tail has this many bytes",
    "events_kafka_brokers": "change events: Kafka bootstrap servers HOST:PORT[,HOST:PORT]; empty: no Kafka",
    "events_kafka_topic": "change events: the deployment's topic (key = document name)",
    "events_kafka_security_protocol": "Kafka security: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    "events_kafka_sasl_mechanism": "Kafka SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
    "events_kafka_sasl_username": "Kafka SASL user name",
    "events_kafka_sasl_password": "Kafka SASL password",
    "events_kafka_ssl_cafile": "CA file to verify the Kafka brokers' TLS certificates",
    "events_kafka_send_timeout_seconds": "bound on publishing one batch; then Kafka counts as unavailable (lag,"
    " /readyz) and the batch is retried",
    "webhooks": 'change events as signed webhooks: JSON [{"name","url","secret","events":[...],"documents":[globs]}] or @FILE',
    "webhook_max_attempts": "delivery attempts per event before it goes to the dead-letter list",
    "webhook_backoff_ms": "first webhook retry delay, doubled after each failure (at most 60 s)",
    "webhook_timeout_seconds": "one webhook POST's timeout",
    "events_window_ms": "coalescing: 0 publishes every stored update; N merges a document's updates per N ms",
    "events_poll_ms": "how often the publisher looks for updates committed by other hub nodes",
    "events_partitions": "documents are split into this many publishing leases shared by hub nodes",
    "events_max_backlog": "unpublished updates per document kept from compaction; beyond, they are summarised",
    "events_text_fields": "comma-separated root Y.Text names whose text delta document.changed carries",
    "ws_implementation": "WebSocket implementation: lean (the hub's own, a small idle footprint), "
    "or uvicorn's websockets-sansio, websockets or wsproto",
    "ws_per_message_deflate": "accept permessage-deflate (costs CPU and latency on small messages)",
    "log_level": "debug, info, warning or error",
    "log_json": "write logs as JSON lines",
}


def _add_setting_flags(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    for spec in fields(Settings):
        default = getattr(defaults, spec.name)
        flag = "--" + spec.name.replace("_", "-")
        env = ENV_PREFIX + spec.name.upper()
        text = f"{HELP[spec.name]} [env {env}; default {default!r}]"
        if isinstance(default, bool):
            parser.add_argument(
                flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            parser.add_argument(
                flag,
                dest=spec.name,
                type=type(default),
                choices=CHOICES.get(spec.name),
                default=None,
                help=text,
            )


def build_parser(defaults: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collab-server",
        description="Nova Collab: a real-time Yjs collaboration hub (y-websocket protocol).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the hub",
        description="Run the hub. Clients connect to ws://HOST:PORT/<document-name>. "
        "Every option can also be set with an environment variable (shown in brackets); flags win.",
    )
    _add_setting_flags(serve, defaults)
    token = commands.add_parser(
        "token",
        help="mint a signed access token",
        description="Mint a JWT for a person or an agent. Example: collab-server token --subject alice "
        "--grant 'notes/*:write' --grant 'public/*:read' (the secret comes from --secret or NOVA_AUTH_SECRET).",
    )
    token.add_argument("--subject", required=True, help="who: a user name or agent:<name>")
    token.add_argument("--kind", choices=["human", "agent"], default="human", help="human or agent (human)")
    token.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="PATTERN:ROLE",
        help="document glob and role (read, write, admin); repeatable",
    )
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds until the token expires (3600)")
    token.add_argument("--secret", default=None, help="HS256 secret (default: NOVA_AUTH_SECRET)")
    token.add_argument(
        "--private-key-file", default=None, help="PEM private key to sign ES256/RS256 tokens instead"
    )
    token.add_argument("--algorithm", default=None, help="HS256 (secret), ES256 or RS256 (key)")
    add_key_commands(commands, defaults)
    add_document_commands(commands, defaults)
    add_archive_commands(commands, defaults)
    return parser


def websocket_protocol(settings: Settings) -> type[asyncio.Protocol] | str:
    """uvicorn's ``ws`` option. "lean": the hub's own protocol (native_socket.py), or with
    permessage-deflate on (which it does not offer) uvicorn's sans-I/O one, slimmed."""
    if settings.ws_implementation != "lean":
        return settings.ws_implementation
    return LeanWebSocketProtocol if settings.ws_per_message_deflate else NativeWebSocketProtocol


def uvicorn_config(
    settings: Settings, app: ASGIApp, certificate: CertificateReloader | None = None
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws=websocket_protocol(settings),
        # The hub checks sizes itself (with a named close and a log line); uvicorn's bound sits above it.
        ws_max_size=settings.max_message_bytes + 1024 * 1024,
        ws_ping_interval=settings.ping_interval_seconds,
        ws_ping_timeout=settings.ping_timeout_seconds,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
        lifespan="on",
        interface="asgi3",  # the app's __call__ hands back a coroutine (not itself async)
        # Client addresses behind proxies are resolved by the hub itself (trusted_proxies).
        proxy_headers=False,
        log_config=None,
        access_log=False,
        # One context for the listener's life: the reloader loads renewed certificates into it.
        ssl_context_factory=(lambda _config, _default: certificate.context) if certificate else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        defaults = settings_from_env()
    except ValueError as exc:
        print(f"collab-server: {exc}", file=sys.stderr)
        return 2
    args = build_parser(defaults).parse_args(argv)
    if args.command == "token":
        return mint_command(args, defaults)
    if args.command == "keys":
        return keys_command(args)
    if args.command == "documents":
        return documents_command(args)
    if args.command in ("archive", "restore-archive"):
        return archive_command(args)
    overrides = {spec.name: getattr(args, spec.name) for spec in fields(Settings)}
    try:
        settings = defaults.with_overrides(overrides).validate()
    except ValueError as exc:
        print(f"collab-server: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        settings.log_level,
        json_lines=settings.log_json,
        node_id=settings.node_id,
        secrets=(
            settings.auth_secret,
            settings.metrics_token,
            settings.archive_secret_key,
            *master_key_secrets(settings.master_keys),
        ),
    )
    certificate = None
    if settings.tls_certfile:
        try:
            certificate = CertificateReloader(
                settings.tls_certfile, settings.tls_keyfile, settings.tls_reload_seconds
            )
        except CertificateError as exc:
            print(f"collab-server: {exc}", file=sys.stderr)
            return 2
    logging.getLogger(__name__).info(
        "Nova Collab hub on %s://%s:%d/<document> (store %s)",
        "wss" if certificate else "ws",
        settings.host,
        settings.port,
        redact_url(settings.store),
    )
    problem = asyncio.run(preflight(settings))
    if problem is not None:
        print(f"collab-server: {problem}", file=sys.stderr)
        return 1
    app = create_app(settings, certificate=certificate)
    server = uvicorn.Server(uvicorn_config(settings, app, certificate))
    pace_collector(settings.gc_full_collection_threshold)  # long loop stalls: see gc_pacing.py
    server.run()
    return 0 if server.started else 1


def mint_command(args: argparse.Namespace, defaults: Settings) -> int:
    grants = []
    for grant in args.grant:
        pattern, _, role = grant.rpartition(":")
        if not pattern or role not in ("read", "write", "admin"):
            print(f"collab-server: --grant {grant!r} must be PATTERN:read|write|admin", file=sys.stderr)
            return 2
        grants.append((pattern, role))
    if args.private_key_file:
        with open(args.private_key_file, encoding="utf-8") as handle:
            key = handle.read()
        algorithm = args.algorithm or "ES256"
    else:
        key = args.secret or defaults.auth_secret
        algorithm = args.algorithm or "HS256"
    if not key:
        print("collab-server: give --secret, NOVA_AUTH_SECRET or --private-key-file", file=sys.stderr)
        return 2
    print(mint(key, args.subject, grants, kind=args.kind, ttl_seconds=args.ttl, algorithm=algorithm))
    return 0


def master_key_secrets(text: str) -> list[str]:
    """The base64 secrets of a NOVA_MASTER_KEYS list, to redact from logs."""
    return [part.partition(":")[2].strip() for part in text.split(",") if ":" in part]


async def preflight(settings: Settings) -> str | None:
    """Open the store once before serving: a wrong URL, an unreachable database or a wrong or
    missing master key fails fast."""
    try:
        store = store_from_url(
            settings.store_url,
            key_provider(settings.master_key_file, settings.master_keys),
            store_options(settings),
        )
    except (ValueError, MasterKeyError) as exc:
        return str(exc)
    try:
        await store.open()
    except StoreError as exc:
        return f"store {redact_url(settings.store)} is not usable: {exc}"
    try:
        await check_plaintext_mode(store)
    except StoreError as exc:
        return f"store {redact_url(settings.store)} is not usable: {exc}"
    finally:
        await store.close()
    if settings.redis_url:
        client = aioredis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=2,
            **redis_tls_options(settings.redis_url, settings.redis_tls_ca_file),
        )
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            return f"Redis {redact_url(settings.redis_url)} is not reachable: {exc}"
        finally:
            await client.aclose()
    return None


if __name__ == "__main__":
    sys.exit(main())
