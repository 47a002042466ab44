"""Master keys: the key-provider port and its file and environment adapters.

A master key never reaches the database: it only wraps (encrypts) the per-document data
keys. A provider knows one *current* key (new data keys are wrapped with it) and any
number of older ones (still needed to unwrap data keys not re-wrapped yet).

Text form, shared by both adapters: ``ID:BASE64`` entries, the first one current. In a
file, one entry per line (``#`` starts a comment); in the environment, comma-separated.
``ID`` is a short name (letters, digits, ``-``, ``_``, ``.``); the key is 32 random bytes
(AES-256). ``collab-server keys generate`` prints a new entry.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

KEY_BYTES = 32  # AES-256
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class MasterKeyError(Exception):
    """Base class of master-key problems."""


class MasterKeyUnavailable(MasterKeyError):
    """A master key the data needs is not configured, or the configuration is unreadable."""


class WrongMasterKey(MasterKeyError):
    """A configured master key does not open what it is supposed to open."""


@dataclass(frozen=True, slots=True)
class MasterKey:
    id: str
    secret: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"MasterKey({self.id!r})"


class KeyProvider(Protocol):
    """Where master keys come from (a file, the environment; a cloud KMS adapter can follow)."""

    def current(self) -> MasterKey:
        """The key new data keys are wrapped with."""

    def get(self, key_id: str) -> MasterKey:
        """The key named ``key_id``; raise MasterKeyUnavailable if it is not configured."""

    def describe(self) -> str:
        """Where the keys come from, for messages (never a secret)."""


def new_key_entry(key_id: str) -> str:
    """A fresh ``ID:BASE64`` entry."""
    _check_id(key_id)
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def parse_keys(entries: list[str], where: str) -> list[MasterKey]:
    keys: list[MasterKey] = []
    for number, raw in enumerate(entries, 1):
        key_id, sep, encoded = raw.strip().partition(":")
        if not sep:
            raise MasterKeyUnavailable(f"{where}: entry {number} is not ID:BASE64")
        _check_id(key_id, where)
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MasterKeyUnavailable(f"{where}: key {key_id!r} is not valid base64") from exc
        if len(secret) != KEY_BYTES:
            raise MasterKeyUnavailable(
                f"{where}: key {key_id!r} has {len(secret)} bytes, AES-256 needs {KEY_BYTES}"
            )
        if any(key.id == key_id for key in keys):
            raise MasterKeyUnavailable(f"{where}: key id {key_id!r} appears twice")
        keys.append(MasterKey(key_id, secret))
    if not keys:
        raise MasterKeyUnavailable(f"{where}: no master key")
    return keys


def _check_id(key_id: str, where: str = "master key") -> None:
    if not _KEY_ID.match(key_id):
        raise MasterKeyUnavailable(f"{where}: key id {key_id!r} must be 1-64 of A-Z a-z 0-9 . _ -")


class StaticKeyProvider:
    """Keys given once (the ``NOVA_MASTER_KEYS`` setting). Rotating them needs a restart of
    each node with the new list, new key first (a rolling restart: keep the old key listed
    until ``collab-server keys rotate`` has re-wrapped every data key)."""

    def __init__(self, text: str, where: str = "NOVA_MASTER_KEYS") -> None:
        self._where = where
        self._keys = parse_keys([part for part in text.split(",") if part.strip()], where)

    def current(self) -> MasterKey:
        return self._keys[0]

    def get(self, key_id: str) -> MasterKey:
        for key in self._keys:
            if key.id == key_id:
                return key
        raise MasterKeyUnavailable(f"{self._where} has no master key {key_id!r}")

    def describe(self) -> str:
        return self._where


class FileKeyProvider:
    """Keys in a file (mode 0600 recommended), re-read when it changes: rotation without a
    restart is "put the new key first in the file, run ``keys rotate``, drop the old line"."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()  # data keys are unwrapped from worker threads too
        self._stamp: tuple[int, int] | None = None
        self._keys: list[MasterKey] = []
        self._reload()

    def _reload(self) -> None:
        try:
            stat = self._path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return
            text = self._path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MasterKeyUnavailable(f"master key file {self._path}: {exc.strerror or exc}") from exc
        lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        keys = parse_keys([line for line in lines if line], f"master key file {self._path}")
        self._keys, self._stamp = keys, stamp

    def current(self) -> MasterKey:
        with self._lock:
            self._reload()
            return self._keys[0]

    def get(self, key_id: str) -> MasterKey:
        with self._lock:
            for attempt in range(2):
                for key in self._keys:
                    if key.id == key_id:
                        return key
                if attempt == 0:
                    self._reload()  # added to the file since we last looked?
        raise MasterKeyUnavailable(f"master key file {self._path} has no key {key_id!r}")

    def describe(self) -> str:
        return f"master key file {self._path}"


def key_provider(key_file: str, keys_text: str) -> KeyProvider | None:
    """The provider the settings name: a file, the environment's list, or None (encryption off)."""
    if key_file and keys_text:
        raise MasterKeyUnavailable("give either a master key file or NOVA_MASTER_KEYS, not both")
    if key_file:
        return FileKeyProvider(key_file)
    if keys_text:
        return StaticKeyProvider(keys_text)
    return None
