"""Envelope encryption: AES-256-GCM payloads under per-document data keys.

A payload on disk is ``MAGIC (4) | data key id (8) | nonce (12) | ciphertext + tag (16)``.
The header and the document name are authenticated (GCM associated data), so a row
copied into another document, or a header edited by hand, fails to open instead of
decrypting to something. A data key is wrapped the same way by a master key, bound to its
document and master key id.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from persistence.base import WrappedDataKey
from persistence.encryption.keys import KEY_BYTES, MasterKey, WrongMasterKey

MAGIC = b"NVE1"
KEY_ID_BYTES = 8
NONCE_BYTES = 12  # GCM's standard nonce, never repeated under one key (see DataKey._nonce)
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES
OVERHEAD = HEADER_BYTES + NONCE_BYTES + 16


class UnreadablePayload(Exception):
    """A payload is not an envelope, names another data key, or fails authentication."""


class DataKey:
    """A document's data key in the clear (memory only)."""

    __slots__ = ("_aad", "_counter", "_header", "_lock", "_prefix", "aead", "document", "key_id")

    def __init__(self, document: str, key_id: bytes, aead: AESGCM) -> None:
        self.document = document
        self.key_id = key_id
        self.aead = aead
        self._header = MAGIC + key_id
        self._aad = self._header + document.encode()  # computed once: sealing is per update
        self._lock = threading.Lock()
        self._new_prefix()

    def _new_prefix(self) -> None:
        # Nonce = 8 random bytes drawn per holder of the key + a 4-byte counter: unique without
        # a system call per update (two holders share a prefix with probability ~2^-64 each).
        self._prefix = os.urandom(NONCE_BYTES - 4)
        self._counter = itertools.count()

    def _nonce(self) -> bytes:
        number = next(self._counter)  # atomic under the GIL: safe from worker threads
        if number >= 1 << 32:
            with self._lock:
                self._new_prefix()
                number = next(self._counter)
        return self._prefix + number.to_bytes(4, "big")

    def seal(self, plaintext: bytes) -> bytes:
        nonce = self._nonce()
        return self._header + nonce + self.aead.encrypt(nonce, plaintext, self._aad)

    def open(self, payload: bytes) -> bytes:
        if len(payload) < OVERHEAD or payload[: len(MAGIC)] != MAGIC:
            raise UnreadablePayload("not an encrypted payload (written without encryption?)")
        if payload[len(MAGIC) : HEADER_BYTES] != self.key_id:
            raise UnreadablePayload(
                f"sealed with data key {payload[len(MAGIC) : HEADER_BYTES].hex()}, not {self.key_id.hex()}"
            )
        nonce = payload[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        try:
            return self.aead.decrypt(nonce, payload[HEADER_BYTES + NONCE_BYTES :], self._aad)
        except InvalidTag as exc:
            raise UnreadablePayload(
                "authentication failed (damaged, or moved from another document)"
            ) from exc


def is_sealed(payload: bytes) -> bool:
    return payload[: len(MAGIC)] == MAGIC


def new_data_key(document: str, master: MasterKey) -> tuple[DataKey, WrappedDataKey]:
    secret = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    key_id = secrets.token_bytes(KEY_ID_BYTES)
    wrapped = _wrap(document, key_id, secret, master)
    return DataKey(document, key_id, AESGCM(secret)), WrappedDataKey(
        document, key_id.hex(), master.id, wrapped, time.time()
    )


def unwrap(record: WrappedDataKey, master: MasterKey) -> DataKey:
    return DataKey(record.document, bytes.fromhex(record.key_id), AESGCM(_unwrap_secret(record, master)))


def rewrap(record: WrappedDataKey, old: MasterKey, new: MasterKey) -> WrappedDataKey:
    """The same data key wrapped by ``new`` (content is not re-encrypted)."""
    secret = _unwrap_secret(record, old)
    key_id = bytes.fromhex(record.key_id)
    return WrappedDataKey(
        record.document, record.key_id, new.id, _wrap(record.document, key_id, secret, new), record.created_at
    )


def _associated(document: str, key_id: bytes, master_id: str) -> bytes:
    return b"nova-data-key\0" + document.encode() + b"\0" + key_id + b"\0" + master_id.encode()


def _wrap(document: str, key_id: bytes, secret: bytes, master: MasterKey) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(master.secret).encrypt(nonce, secret, _associated(document, key_id, master.id))


def _unwrap_secret(record: WrappedDataKey, master: MasterKey) -> bytes:
    if record.master_key_id != master.id:
        raise WrongMasterKey(
            f"data key of {record.document!r} is wrapped by {record.master_key_id!r}, not {master.id!r}"
        )
    nonce, body = record.wrapped[:NONCE_BYTES], record.wrapped[NONCE_BYTES:]
    try:
        return AESGCM(master.secret).decrypt(
            nonce, body, _associated(record.document, bytes.fromhex(record.key_id), master.id)
        )
    except InvalidTag as exc:
        raise WrongMasterKey(
            f"master key {master.id!r} does not open the data key of {record.document!r} (wrong key?)"
        ) from exc
