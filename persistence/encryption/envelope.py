"""Envelope encryption: AES-256-GCM payloads under per-document data keys.

A payload on disk is ``MAGIC (4) | data key id (8) | nonce (12) | ciphertext + tag (16)``.
The header and the document name are authenticated (GCM associated data), so a row
copied into another document, or a header edited by hand, fails to open instead of
decrypting to something. A data key is wrapped the same way by a master key, bound to its
document and master key id.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from persistence.base import WrappedDataKey
from persistence.encryption.keys import KEY_BYTES, MasterKey, WrongMasterKey

MAGIC = b"NVE1"
KEY_ID_BYTES = 8
NONCE_BYTES = 12  # GCM's standard nonce; random per message (2^32 messages per key stay safe)
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES
OVERHEAD = HEADER_BYTES + NONCE_BYTES + 16


class UnreadablePayload(Exception):
    """A payload is not an envelope, names another data key, or fails authentication."""


@dataclass(frozen=True, slots=True)
class DataKey:
    """A document's data key in the clear (memory only)."""

    document: str
    key_id: bytes
    aead: AESGCM

    def seal(self, plaintext: bytes) -> bytes:
        header = MAGIC + self.key_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        return header + nonce + self.aead.encrypt(nonce, plaintext, header + self.document.encode())

    def open(self, payload: bytes) -> bytes:
        header = payload[:HEADER_BYTES]
        if len(payload) < OVERHEAD or header[: len(MAGIC)] != MAGIC:
            raise UnreadablePayload("not an encrypted payload (written without encryption?)")
        if header[len(MAGIC) :] != self.key_id:
            raise UnreadablePayload(
                f"sealed with data key {header[len(MAGIC) :].hex()}, not {self.key_id.hex()}"
            )
        nonce = payload[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        try:
            return self.aead.decrypt(
                nonce, payload[HEADER_BYTES + NONCE_BYTES :], header + self.document.encode()
            )
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
