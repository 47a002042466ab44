"""Hub settings: one frozen value built from defaults, environment variables and CLI flags.

Every limit lives here with its default and the environment variable that sets it
(``NOVA_`` + the field name in upper case). Nothing reads the environment elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, get_args

from collab_server.client_address import TrustedProxies
from collab_server.tls import PostgresSslMode, postgres_url_with_tls

MIB = 1024 * 1024

Durability = Literal["strict", "relaxed"]
WebSocketImplementation = Literal["lean", "websockets-sansio", "websockets", "wsproto"]
LogLevel = Literal["debug", "info", "warning", "error"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]  # empty: no SASL
# Settings whose values are one of a fixed set, checked by ``validate``.
CHOICES: dict[str, tuple[str, ...]] = {
    "durability": get_args(Durability),
    "ws_implementation": get_args(WebSocketImplementation),
    "log_level": get_args(LogLevel),
    "store_ssl_mode": get_args(PostgresSslMode),
    "events_kafka_security_protocol": get_args(KafkaSecurityProtocol),
    "events_kafka_sasl_mechanism": get_args(KafkaSaslMechanism),
}


def _new_node_id() -> str:
    return f"node-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 1234
    # Where documents are kept: "sqlite:///<path>" (embedded default), "memory", or "postgresql://...".
    store: str = "sqlite:///nova-collab.sqlite3"
    # Redis for scale-out between hub nodes ("redis://host:port/db"); empty: a single node.
    redis_url: str = ""
    # At most one Redis read and one publish round trip per this many ms on a node: a busy
    # document's updates cross nodes in batches (at most this much later), a lone one at once.
    redis_window_ms: float = 25.0
    # TLS to Redis: a "rediss://" URL always verifies the server; this CA file (PEM) replaces
    # the system CAs for that check.
    redis_tls_ca_file: str = ""
    # TLS to PostgreSQL (libpq's sslmode: disable, allow, prefer, require, verify-ca,
    # verify-full) and the CA that verify-ca/verify-full check against; empty: what the URL says.
    store_ssl_mode: PostgresSslMode = ""
    store_ssl_root_cert: str = ""
    # Semantic search: "embedded" (chromadb in a directory beside the SQLite store, or
    # `search_dir`), "off", or a chromadb server "http://host:port".
    search: str = "embedded"
    search_dir: str = ""
    search_interval_seconds: float = 2.0
    # The search worker process is restarted when its resident memory passes this (MiB).
    search_worker_max_mb: int = 1024
    # Identifies this process in the update log and across hub nodes.
    node_id: str = field(default_factory=_new_node_id)

    # Durability: "strict" relays an update only after its commit; "relaxed" relays first and
    # persists right after (an update relayed less than `group_commit_ms` before a crash can be lost).
    durability: Durability = "strict"
    group_commit_ms: float = 0.0
    # Updates accepted but not yet stored (across documents) before writes are refused with 1013.
    max_unsaved_updates: int = 100_000
    commit_batch_max_updates: int = 10_000  # updates written in one store transaction at most
    store_retry_max_seconds: float = 2.0  # longest backoff between retries of an unreachable store
    # A document whose updates the store refuses (not an outage) is set aside for this long:
    # its clients are closed with 4500, joins answer 4503, every other document keeps committing.
    set_aside_seconds: float = 60.0
    # A joiner's sync answer waits for the document's pending commits (strict durability) at
    # most this long; then the joiner is closed with 1013 (try again later).
    join_wait_seconds: float = 10.0

    # Fan-out: in rooms with at least `relay_window_min_peers` connections, updates arriving
    # within a window (0.2 ms per peer, at most `relay_window_ms`) leave as one merged frame.
    relay_window_ms: float = 20.0
    relay_window_min_peers: int = 32

    # Limits.
    max_message_bytes: int = (
        64 * MIB
    )  # a client joining with a large offline document sends it in one message
    max_documents: int = 10_000  # documents held in memory at once
    max_connections_per_document: int = 10_000
    max_messages_per_second: float = 1_000.0  # per connection, sustained
    message_burst: int = 4_000  # per connection, token-bucket depth
    outbox_max_messages: int = 2_048  # per connection, before queued updates are merged
    # Frames at least this large (a big document's state for a joiner) are sent by at most
    # `large_frames_in_flight` connections at a time, each until its socket has drained (or
    # `large_frame_drain_seconds`): a crowd joining a huge document holds a few copies, not one each.
    large_frame_bytes: int = 1 * MIB
    large_frames_in_flight: int = 4
    large_frame_drain_seconds: float = 10.0
    # Per connection, after merging, not counting its largest frame (one frame of any size always
    # fits, so a large document or paste reaches everyone): over this the client is dropped.
    outbox_max_bytes: int = 64 * MIB

    # Presence (awareness): what one connection and one document may hold. Over a limit the
    # entry is refused (the client is told with a permission-denied message), not stored or sent.
    max_awareness_state_bytes: int = 16 * 1024  # one client's state, JSON text
    max_awareness_clients_per_connection: int = 4  # client ids one connection may announce
    max_awareness_entries_per_document: int = 10_000
    max_awareness_bytes_per_document: int = 8 * MIB  # all states of a document together

    # Updates whose dependencies are missing are held back until they arrive; what is held
    # counts against `max_document_bytes` and is capped (close 4412 for the sender).
    max_pending_bytes_per_connection: int = 8 * MIB
    max_pending_bytes_per_document: int = 32 * MIB
    max_documents_per_socket: int = 1_000  # documents one Hocuspocus socket may multiplex
    # Messages one Hocuspocus document may have waiting for its handling (auth and loading included).
    hocuspocus_inbox_messages: int = 1_024

    # Security. No secret and no key: auth is off (everyone may do everything; logged loudly).
    auth_secret: str = ""  # HS256 shared secret
    auth_public_key_file: str = ""  # PEM public key for ES256 / RS256 tokens
    auth_timeout_seconds: float = 5.0  # a socket without a token must send one (auth message) by then
    allowed_origins: str = ""  # comma-separated WebSocket/CORS origins; empty: any origin
    # Quotas count real identities: a token's subject (with auth on; without auth there is no
    # subject to count), and a client address taken from X-Forwarded-For when the socket
    # comes from one of `trusted_proxies` (addresses or networks, "*" for any). Sockets from a
    # trusted address that name no client (local processes) are not limited per address.
    trusted_proxies: str = "127.0.0.1,::1"
    max_connections_per_subject: int = 1_000
    max_connections_per_ip: int = 2_000
    max_documents_per_subject: int = 1_000  # distinct documents one subject has open at once
    max_document_bytes: int = 256 * MIB  # encoded size of one document; writes beyond are refused
    # Shared secret a Prometheus scraper sends as `Authorization: Bearer` to see per-document
    # series on /metrics (an admin token on every document works too); others get aggregates.
    metrics_token: str = ""
    # HTTP writes in strict durability answer after their commit; past this wait: 503.
    http_commit_timeout_seconds: float = 10.0

    # TLS for the hub's own listener: with both files the hub serves https:// and wss:// only.
    # The files are checked every `tls_reload_seconds` and a renewed pair is used for new
    # connections without a restart.
    tls_certfile: str = ""
    tls_keyfile: str = ""
    tls_reload_seconds: float = 10.0

    # gRPC (collab_server/rpc): off unless a port is given; the same documents, auth and limits.
    grpc_port: int = 0
    grpc_host: str = ""  # empty: the same interface as `host`
    grpc_max_message_bytes: int = 64 * MIB  # largest gRPC message either way (RESOURCE_EXHAUSTED)
    grpc_max_streams_per_connection: int = 100  # concurrent calls on one HTTP/2 connection
    grpc_max_concurrent_calls: int = 10_000  # across the listener; more are refused (RESOURCE_EXHAUSTED)

    # Loading.
    merge_on_load_parts: int = 32  # stored parts above which a load merges them first (native backend)
    off_loop_diff_bytes: int = 1 * MIB  # joiners' diffs of documents this large run in a worker thread
    max_early_remote_messages: int = 10_000  # other nodes' messages buffered per document while it loads
    # Other nodes' updates are relayed to this node's clients without being integrated into its
    # copy of the document until the state is needed (a joiner, a read, a local edit); past this
    # many bytes per document they are integrated anyway, so the backlog stays bounded.
    max_unapplied_remote_bytes: int = 1 * MIB

    # Encryption at rest (persistence/encryption): master keys from a file (re-read when it
    # changes) or an "ID:BASE64,..." list; the first key is current. Neither: content is
    # stored in the clear (and a store holding encrypted documents refuses to open).
    master_key_file: str = ""
    master_keys: str = ""

    # Archives (persistence/archive): "" off, a directory / file:///DIR, or
    # s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT&region=R&path_style=true.
    archive: str = ""
    archive_access_key: str = ""
    archive_secret_key: str = ""
    archive_interval_seconds: float = 60.0  # changed documents are archived this often
    # Documents untouched this long move out of the database into the archive (0: never);
    # they come back on the next open or read.
    tier_after_seconds: float = 0.0

    # Checkpoints (readable old versions) older than this are pruned, the newest one of each
    # document always kept; 0 keeps every checkpoint. With an archive, the archive keeps them.
    checkpoint_retention_seconds: float = 0.0

    # Deletion: a soft-deleted document can be restored for this long, then it is erased.
    deletion_grace_seconds: float = 7 * 24 * 3600.0

    # Store connections (persistence/factory.py hands them to the adapter the URL names).
    # PostgreSQL: a pool of at most `store_max_connections` per hub node (mind the server's
    # max_connections across nodes and the search worker, which has its own pool), each
    # connection attempt bounded by `store_connect_timeout_seconds`, each statement by
    # `store_command_timeout_seconds`, the wait for a free pooled connection by
    # `store_acquire_timeout_seconds`. SQLite: a write waits `store_busy_timeout_seconds` for
    # another process holding the file's write lock (the CLI's maintenance commands).
    store_max_connections: int = 10
    store_connect_timeout_seconds: float = 5.0
    store_command_timeout_seconds: float = 30.0
    store_acquire_timeout_seconds: float = 10.0
    store_busy_timeout_seconds: float = 10.0

    # HTTP API: the largest request body (JSON), read in bounded chunks; over it: 413.
    max_http_body_bytes: int = 64 * 1024

    # Shared editor sessions (session_lobby.py, host controls): sessions one node keeps a lobby
    # for, unanswered join requests per session (dropped after `session_request_seconds`),
    # approved guests per session, and a guest token's lifetime.
    max_sessions: int = 1_000
    max_session_join_requests: int = 16
    max_session_guests: int = 64
    session_request_seconds: float = 600.0
    session_guest_token_seconds: float = 12 * 3600.0

    # Lifetimes.
    idle_unload_seconds: float = 30.0  # a document with no connections is unloaded after this
    awareness_flush_ms: float = 50.0  # presence changes are batched over this window
    # Presence bytes per second a document sends in all, shared by its connections (each
    # gets this ÷ their number; 0: no pacing). A crowd's presence is n² bytes: beyond this,
    # a connection gets everyone's newest state less often, and document updates go first.
    awareness_bytes_per_second: int = 32 * MIB
    awareness_timeout_seconds: float = (
        30.0  # states not renewed for this long are removed (y-protocols: 30 s)
    )
    # WebSocket ping; a peer that misses one pong is dropped. Each ping is a frame out and a
    # pong in per connection: at 5 s they were a tenth of the messages of 1,000 sockets over
    # 200 typed documents. 15 + 5 s still drops a silent peer sooner than the peers' 30 s.
    ping_interval_seconds: float = 15.0
    ping_timeout_seconds: float = 5.0
    shutdown_timeout_seconds: float = 10.0  # bounds the whole shutdown: flush, compactions, audit
    maintenance_interval_seconds: float = 0.5  # presence expiry, idle unload, token expiry checks
    store_check_interval_seconds: float = 2.0  # store health ping (and its timeout), for /readyz
    revocation_refresh_seconds: float = 30.0  # re-read revocations from the store (missed announcements)

    # Compaction of the stored log.
    compact_after_updates: int = 2_000
    compact_after_bytes: int = 4 * MIB

    # Change events (off unless brokers or webhooks are set): a Kafka topic and/or webhooks.
    events_kafka_brokers: str = ""  # "host:port,host:port"
    events_kafka_topic: str = "nova.events"
    events_kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    events_kafka_sasl_mechanism: KafkaSaslMechanism = ""
    events_kafka_sasl_username: str = ""
    events_kafka_sasl_password: str = ""
    events_kafka_ssl_cafile: str = ""
    events_kafka_send_timeout_seconds: float = 15.0  # one batch; then Kafka counts as unavailable
    webhooks: str = ""  # JSON list of {"name","url","secret","events","documents"}, or @FILE
    webhook_max_attempts: int = 8
    webhook_backoff_ms: float = 500.0  # first retry delay, doubled per attempt (capped at 60 s)
    webhook_timeout_seconds: float = 10.0
    events_window_ms: float = 0.0  # 0: one event per stored update; N: at most one per document per N ms
    events_poll_ms: float = 100.0  # how often other nodes' commits are looked for
    events_partitions: int = 8  # documents are split into this many leases between hub nodes
    events_max_backlog: int = 10_000  # unpublished updates per document held back from compaction
    events_text_fields: str = "content"  # root Y.Text names whose text delta events carry

    # "lean": the hub's own WebSocket protocol, a small idle footprint (native_socket.py).
    ws_implementation: WebSocketImplementation = "lean"
    ws_per_message_deflate: bool = False  # doubles small-message latency when on
    log_level: LogLevel = "info"
    log_json: bool = False

    # Latency under load (the relay window and the store's pacing; docs: "Latency and load").
    # The relay window (`relay_window_ms`) opens when the hub process uses more than
    # `relay_idle_load` of a core and is at its full size from `relay_busy_load`: below, with
    # CPU to spare, every update leaves at once. A relay that runs `relay_lagging_ms` later
    # than planned means the event loop is short of CPU (whoever uses it): the window opens too.
    relay_idle_load: float = 0.35
    relay_busy_load: float = 0.7
    relay_lagging_ms: float = 5.0
    # Strict durability: an update is relayed once its commit is written; the fsync that makes
    # it survive power loss follows (acknowledgements and joiners wait for it). At most one
    # fsync starts per this many ms, covering every commit written before it; a quiet hub syncs
    # at once. Raising it saves CPU per update, at that much more acknowledgement latency.
    store_sync_interval_ms: float = 20.0
    # A failing store write or fsync is retried after this, doubling up to `store_retry_max_seconds`.
    store_first_retry_ms: float = 50.0
    # A full garbage collection (which stops the event loop while it walks every object: ~0.2 s
    # with 1,500 sockets) waits for this many middle-generation collections (CPython: 10).
    gc_full_collection_threshold: int = 100

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def validate(self) -> Settings:
        """Check every setting alone and the limits together; raises ValueError naming the conflict."""
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, not {getattr(self, name)!r}")
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        for name in _NOT_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)!r}")
        if self.search not in ("embedded", "off") and not self.search.startswith(("http://", "https://")):
            raise ValueError(f"search must be 'embedded', 'off' or http://host:port, not {self.search!r}")
        TrustedProxies(self.trusted_proxies)  # raises ValueError on a malformed entry
        if not 0 < self.http_commit_timeout_seconds <= 300:
            raise ValueError("http_commit_timeout_seconds must be in (0, 300]")
        for small, large, why in _ORDERED_LIMITS:
            if getattr(self, small) > getattr(self, large):
                raise ValueError(
                    f"contradictory limits: {small}={getattr(self, small)} is larger than"
                    f" {large}={getattr(self, large)} ({why})"
                )
        if self.outbox_max_messages < 2:
            raise ValueError("outbox_max_messages must be at least 2 (a joiner gets sync and presence)")
        if not 0 <= self.grpc_port <= 65535:
            raise ValueError("grpc_port must be 0 (off) or a TCP port")
        self._validate_tls()
        return self

    def _validate_tls(self) -> None:
        if bool(self.tls_certfile) != bool(self.tls_keyfile):
            raise ValueError("tls_certfile and tls_keyfile go together: give both or neither")
        if self.tls_reload_seconds <= 0:
            raise ValueError("tls_reload_seconds must be positive")
        if (self.store_ssl_mode or self.store_ssl_root_cert) and not self.store.startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("store_ssl_mode and store_ssl_root_cert apply to a postgresql:// store only")
        if self.redis_tls_ca_file and not self.redis_url.startswith("rediss://"):
            raise ValueError("redis_tls_ca_file needs a rediss:// redis_url (TLS)")
        for name in ("tls_certfile", "tls_keyfile", "store_ssl_root_cert", "redis_tls_ca_file"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                raise ValueError(f"{name}: no such file {path!r}")

    @property
    def store_url(self) -> str:
        """``store`` with the PostgreSQL TLS options folded in (what adapters are built from)."""
        return postgres_url_with_tls(self.store, self.store_ssl_mode, self.store_ssl_root_cert)


_POSITIVE = (
    "commit_batch_max_updates",
    "search_worker_max_mb",
    "merge_on_load_parts",
    "shutdown_timeout_seconds",
    "join_wait_seconds",
    "maintenance_interval_seconds",
    "store_check_interval_seconds",
    "max_message_bytes",
    "max_documents",
    "max_connections_per_document",
    "max_messages_per_second",
    "message_burst",
    "outbox_max_messages",
    "outbox_max_bytes",
    "max_documents_per_socket",
    "hocuspocus_inbox_messages",
    "max_unsaved_updates",
    "grpc_max_message_bytes",
    "grpc_max_streams_per_connection",
    "grpc_max_concurrent_calls",
    "max_document_bytes",
    "store_max_connections",
    "store_connect_timeout_seconds",
    "store_command_timeout_seconds",
    "store_acquire_timeout_seconds",
    "store_busy_timeout_seconds",
    "max_http_body_bytes",
    "max_sessions",
    "max_session_join_requests",
    "max_session_guests",
    "session_request_seconds",
    "session_guest_token_seconds",
    "events_kafka_send_timeout_seconds",
    "max_awareness_state_bytes",
    "max_awareness_clients_per_connection",
    "max_awareness_entries_per_document",
    "max_awareness_bytes_per_document",
    "max_pending_bytes_per_connection",
    "max_pending_bytes_per_document",
    "large_frame_bytes",
    "large_frames_in_flight",
    "large_frame_drain_seconds",
    "awareness_timeout_seconds",
    "ping_interval_seconds",
    "ping_timeout_seconds",
    "shutdown_timeout_seconds",
    "auth_timeout_seconds",
    "events_partitions",
    "events_poll_ms",
    "events_max_backlog",
    "webhook_max_attempts",
    "webhook_timeout_seconds",
    "relay_busy_load",
    "store_first_retry_ms",
    "gc_full_collection_threshold",
)
_NOT_NEGATIVE = (
    "redis_window_ms",
    "max_unapplied_remote_bytes",
    "group_commit_ms",
    "relay_window_ms",
    "awareness_flush_ms",
    "awareness_bytes_per_second",
    "idle_unload_seconds",
    "events_window_ms",
    "webhook_backoff_ms",
    "relay_idle_load",
    "relay_lagging_ms",
    "store_sync_interval_ms",
)
# (smaller, larger, why): each pair must hold, or some input passes one limit only to fail another.
_ORDERED_LIMITS = (
    ("relay_idle_load", "relay_busy_load", "the relay window grows from the idle load to the busy load"),
    ("max_message_bytes", "outbox_max_bytes", "a relayed message must fit a peer's outbox"),
    (
        "max_awareness_state_bytes",
        "max_awareness_bytes_per_document",
        "one state must fit the document's presence",
    ),
    (
        "max_pending_bytes_per_connection",
        "max_pending_bytes_per_document",
        "a connection's held-back updates count against the document's",
    ),
)


ENV_PREFIX = "NOVA_"


def _coerce(raw: str, kind: type[Any], name: str) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a boolean")
    try:
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from exc


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    defaults = Settings()
    overrides: dict[str, Any] = {}
    for spec in fields(Settings):
        raw = env.get(ENV_PREFIX + spec.name.upper())
        if raw is not None:
            overrides[spec.name] = _coerce(raw, type(getattr(defaults, spec.name)), spec.name)
    return defaults.with_overrides(overrides)
