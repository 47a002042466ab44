"""Helpers shared by the crdt_core test files (this module holds no tests).

- ``core`` fixture values: every facade function of one backend.
- Random multi-client pycrdt documents and their updates, for differential tests.
- Decoding an update into comparable content (roots and state vector), with pycrdt
  and with yjs in node (``tests/js/crdt/decode.mjs``).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pycrdt
import pytest

import crdt_core

BACKENDS = ("python", "rust")
ROOTS = {"t": "text", "m": "map", "a": "array"}
JS_DIR = Path(__file__).resolve().parent / "js"
NODE_DECODER = JS_DIR / "crdt" / "decode.mjs"
NODE_TIMEOUT_SECONDS = 120


def native_required() -> bool:
    """The set-up always builds the crate: only a deliberate fallback-only run may do without it."""
    return os.environ.get("NOVA_CRDT_BACKEND") != "python"


def backend(name: str) -> SimpleNamespace:
    if name == "rust" and importlib.util.find_spec(crdt_core.NATIVE_MODULE) is None:
        if native_required():
            pytest.fail("the native backend is required here but _crdt_core_native is not installed")
        pytest.skip("native backend not built (run scripts/build_native.sh)")
    return crdt_core.backend_functions(name)


def decode_state_vector(encoded: bytes) -> dict[int, int]:
    count, offset = crdt_core.decode_var_uint(encoded, 0)
    clocks: dict[int, int] = {}
    for _ in range(count):
        client, offset = crdt_core.decode_var_uint(encoded, offset)
        clocks[client], offset = crdt_core.decode_var_uint(encoded, offset)
    return clocks


def content(updates: list[bytes]) -> dict[str, Any]:
    """What a fresh pycrdt document holds after applying ``updates`` one by one."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        doc.apply_update(update)
    roots = {
        "t": str(doc.get("t", type=pycrdt.Text)),
        "m": doc.get("m", type=pycrdt.Map).to_py(),
        "a": doc.get("a", type=pycrdt.Array).to_py(),
    }
    return {"roots": roots, "sv": decode_state_vector(doc.get_state())}


def node_available() -> bool:
    return shutil.which("node") is not None and (JS_DIR / "node_modules" / "yjs").is_dir()


def yjs_decode(cases: dict[str, list[bytes]], roots: dict[str, str] | None = None) -> dict[str, Any]:
    """Per case: yjs's content after applying the updates, and after Y.mergeUpdates."""
    if not node_available():
        if os.environ.get("CI"):
            pytest.fail("node and tests/js/node_modules are required in CI")
        pytest.skip("node or tests/js/node_modules missing (npm ci in tests/js)")
    payload = {
        "roots": roots or ROOTS,
        "cases": {label: [base64.b64encode(u).decode() for u in updates] for label, updates in cases.items()},
    }
    result = subprocess.run(
        ["node", str(NODE_DECODER)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"node decoder failed: {result.stderr}")
    decoded: dict[str, Any] = json.loads(result.stdout)
    for case in decoded.values():
        for key in ("applied", "merged"):
            case[key]["sv"] = {int(c): k for c, k in case[key]["sv"].items()}
        case["merged_sv"] = {int(c): k for c, k in case["merged_sv"].items()}
    return decoded


@dataclass
class Session:
    """Several pycrdt clients editing text, map and array, syncing now and then."""

    clients: int
    docs: list[pycrdt.Doc[Any]] = field(default_factory=list)
    updates: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i in range(self.clients):
            doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=1000 + i * 7919)
            doc.observe(lambda event: self.updates.append(event.update))
            self.docs.append(doc)

    def text(self, i: int) -> pycrdt.Text:
        text: pycrdt.Text = self.docs[i].get("t", type=pycrdt.Text)
        return text

    def run(self, op: tuple[Any, ...]) -> None:
        kind, i = op[0], op[1] % self.clients
        doc = self.docs[i]
        if kind == "sync":
            j = op[2] % self.clients
            doc.apply_update(self.docs[j].get_update(doc.get_state()))
            return
        with doc.transaction():
            if kind == "insert_text":
                text = self.text(i)
                current = str(text)
                at = int(op[2] * len(current))
                text.insert(len(current[:at].encode()), op[3])
            elif kind == "delete_text":
                text = self.text(i)
                current = str(text)
                if current:
                    at = int(op[2] * len(current))
                    size = min(op[3], len(current) - at)
                    start = len(current[:at].encode())
                    del text[start : start + len(current[at : at + size].encode())]
            elif kind == "set_map":
                doc.get("m", type=pycrdt.Map)[op[2]] = op[3]
            elif kind == "delete_map":
                mapping = doc.get("m", type=pycrdt.Map)
                if op[2] in mapping:
                    del mapping[op[2]]
            elif kind == "insert_array":
                array = doc.get("a", type=pycrdt.Array)
                array.insert(int(op[2] * len(array)), op[3])
            elif kind == "delete_array":
                array = doc.get("a", type=pycrdt.Array)
                if len(array):
                    del array[int(op[2] * len(array))]
            else:
                raise ValueError(kind)
