"""Events from what the store holds: log rows of one document become envelopes.

A ``ChangeSource`` keeps a shadow document per document it publishes (at the sink's
cursor) to turn each stored update into a text delta and to see suggestion changes.
Shadows are bounded (least recently used go; they are rebuilt from the store when
needed). With a coalescing window, the rows stamped within ``window`` of the first
unpublished one become one event carrying their merged update; the grouping depends
only on stored rows, so a republished group gets the same id.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pycrdt

import crdt_core
from collab_server.events.envelope import (
    DOCUMENT_CHANGED,
    DOCUMENT_CREATED,
    SUGGESTION_ACCEPTED,
    SUGGESTION_CREATED,
    SUGGESTION_REJECTED,
    Event,
    b64,
    changed_id,
)
from collab_server.ydoc import apply_update
from persistence.base import LoggedUpdate, Store, UnknownVersion

logger = logging.getLogger(__name__)

SUGGESTIONS_FIELD = "nova:suggestions"  # the root map the edit API keeps suggestions in
_STATUS_EVENTS = {"accepted": SUGGESTION_ACCEPTED, "rejected": SUGGESTION_REJECTED}


@dataclass
class _Shadow:
    """A document as of ``seq`` with observers collecting what the next apply changes."""

    seq: int
    doc: pycrdt.Doc[Any]
    deltas: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    suggestions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Batch:
    """Events for one document and the cursor to store once they are published."""

    events: list[Event]
    cursor: int


class ChangeSource:
    def __init__(
        self,
        store: Store,
        *,
        text_fields: Sequence[str] = ("content",),
        window_seconds: float = 0.0,
        max_rows: int = 500,
        max_shadows: int = 256,
    ) -> None:
        self._store = store
        self._text_fields = tuple(text_fields)
        self._window = window_seconds
        self._max_rows = max_rows
        self._max_shadows = max_shadows
        self._shadows: OrderedDict[str, _Shadow] = OrderedDict()

    def ready_at(self, oldest_at: float) -> float:
        """When a document whose oldest unpublished row has ``oldest_at`` may be published."""
        return oldest_at + self._window

    async def next_batch(
        self, document: str, cursor: int, committed: Sequence[LoggedUpdate] | None = None
    ) -> Batch | None:
        """Events for rows after ``cursor`` (None: nothing to publish yet). ``committed``: the
        rows after ``cursor`` as this node just committed them (all of them), instead of a read."""
        if committed is not None:
            rows = list(committed[: self._max_rows])
        else:
            rows = await self._store.read_log(document, cursor, self._max_rows)
        if not rows:
            return None
        if rows[0].update is None:  # compacted before publication: one summary event
            return await self._summary(document, cursor, rows)
        stored = rows[: next((i for i, row in enumerate(rows) if row.update is None), len(rows))]
        if self._window > 0:
            end = rows[0].timestamp + self._window
            if time.time() < end and len(rows) < self._max_rows:
                return None  # the window is still open: more may join this event
            inside = next((i for i, row in enumerate(stored) if row.timestamp >= end), len(stored))
            groups = [stored[: max(inside, 1)]]
        else:
            groups = [[row] for row in stored]
        shadow = await self._shadow(document, cursor)
        events: list[Event] = []
        for group in groups:
            if cursor == 0 and not events:
                events.append(self._created(document, group[0]))
            events.extend(self._changed(document, group, shadow))
            cursor = group[-1].seq
        if shadow is not None:
            shadow.seq = cursor
        return Batch(events, cursor)

    # -- events -----------------------------------------------------------------------

    def _created(self, document: str, first: LoggedUpdate) -> Event:
        actors = (first.actor,) if first.actor else ()
        return Event(
            f"{document}@{first.seq}/created",
            DOCUMENT_CREATED,
            document,
            first.timestamp,
            first.origin_node,
            first.seq,
            first.seq,
            actors,
            {},
        )

    def _changed(self, document: str, group: list[LoggedUpdate], shadow: _Shadow | None) -> list[Event]:
        updates = [row.update for row in group if row.update is not None]
        merged = updates[0] if len(updates) == 1 else crdt_core.merge_updates(updates)
        fields, delta, suggestions = self._apply(shadow, merged)
        last = group[-1]
        actors = tuple(sorted({row.actor for row in group if row.actor}))
        changed = Event(
            changed_id(document, last.seq),
            DOCUMENT_CHANGED,
            document,
            last.timestamp,
            last.origin_node,
            group[0].seq,
            last.seq,
            actors,
            {
                "fields": fields,
                "update": b64(merged),
                "delta": delta,
                "summary": False,
                "updates": len(group),
            },
        )
        return [changed, *self._suggestion_events(changed, suggestions)]

    async def _summary(self, document: str, cursor: int, rows: list[LoggedUpdate]) -> Batch:
        while all(row.update is None for row in rows):  # read to the end of the compacted run
            more = await self._store.read_log(document, rows[-1].seq, self._max_rows)
            if not more:
                break
            rows = rows + more
        compacted = rows[: next((i for i, row in enumerate(rows) if row.update is not None), len(rows))]
        last = compacted[-1]
        # The run ends at a checkpoint: its snapshot holds everything the run changed. A store
        # that cannot rebuild it raises (StoreError): retried and logged, never skipped.
        stored = await self._store.read_version(document, last.seq)
        state = crdt_core.merge_updates(stored.parts)
        shadow = self._shadows.get(document)
        known = shadow is not None and shadow.seq == cursor
        update = state
        delta: dict[str, list[dict[str, Any]]] | None = None
        fields: list[str] = []
        if known and shadow is not None and state:
            update = crdt_core.diff_update(state, shadow.doc.get_state())
            fields, delta, _ = self._apply(shadow, update)
            shadow.seq = last.seq
        elif state:
            self._remember(document, self._new_shadow(last.seq, [state]))
        actors = tuple(sorted({row.actor for row in compacted if row.actor}))
        events = []
        if cursor == 0:
            events.append(self._created(document, compacted[0]))
        events.append(
            Event(
                changed_id(document, last.seq),
                DOCUMENT_CHANGED,
                document,
                last.timestamp,
                last.origin_node,
                compacted[0].seq,
                last.seq,
                actors,
                {
                    "fields": fields,
                    "update": b64(update or b"\x00\x00"),
                    "delta": delta,
                    "summary": True,
                    "updates": len(compacted),
                },
            )
        )
        logger.warning(
            "events: %d updates of %r were compacted before publication; published as one summary",
            len(compacted),
            document,
        )
        return Batch(events, last.seq)

    def _suggestion_events(self, changed: Event, changes: dict[str, dict[str, Any]]) -> list[Event]:
        events = []
        for suggestion_id, change in sorted(changes.items()):
            try:
                record = json.loads(change.get("newValue") or "null")
            except (TypeError, ValueError):
                continue
            if not isinstance(record, dict):
                continue
            if change.get("action") == "add":
                kind = SUGGESTION_CREATED
            else:
                kind = _STATUS_EVENTS.get(str(record.get("status")), "")
                if not kind:
                    continue
            events.append(
                Event(
                    f"{changed.id}/{kind}/{suggestion_id}",
                    kind,
                    changed.document,
                    changed.time,
                    changed.node,
                    changed.first_seq,
                    changed.last_seq,
                    changed.actors,
                    {"suggestion": record},
                )
            )
        return events

    # -- shadow documents ---------------------------------------------------------------

    def _apply(
        self, shadow: _Shadow | None, update: bytes
    ) -> tuple[list[str], dict[str, list[dict[str, Any]]] | None, dict[str, dict[str, Any]]]:
        if shadow is None:
            return [], None, {}
        shadow.deltas.clear()
        shadow.suggestions.clear()
        apply_update(shadow.doc, update, "stored update")
        fields = sorted(shadow.deltas) + ([SUGGESTIONS_FIELD] if shadow.suggestions else [])
        return fields, {name: list(ops) for name, ops in shadow.deltas.items()}, dict(shadow.suggestions)

    def _new_shadow(self, seq: int, parts: Sequence[bytes]) -> _Shadow:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        shadow = _Shadow(seq, doc)
        for name in self._text_fields:
            text = doc.get(name, type=pycrdt.Text)
            shadow.subscriptions.append(text.observe(_collect_delta(shadow, name)))
        suggestions = doc.get(SUGGESTIONS_FIELD, type=pycrdt.Map)
        shadow.subscriptions.append(suggestions.observe(lambda event: shadow.suggestions.update(event.keys)))
        for part in parts:
            apply_update(doc, part, "stored update")
        return shadow

    def _remember(self, document: str, shadow: _Shadow) -> _Shadow:
        self._shadows[document] = shadow
        self._shadows.move_to_end(document)
        while len(self._shadows) > self._max_shadows:
            self._shadows.popitem(last=False)
        return shadow

    async def _shadow(self, document: str, cursor: int) -> _Shadow | None:
        """The document as of ``cursor`` (None when the store cannot rebuild that version)."""
        shadow = self._shadows.get(document)
        if shadow is not None and shadow.seq == cursor:
            self._shadows.move_to_end(document)
            return shadow
        if cursor == 0:
            return self._remember(document, self._new_shadow(0, []))
        try:
            stored = await self._store.read_version(document, cursor)
        except UnknownVersion:
            self._shadows.pop(document, None)
            return None
        parts = stored.parts
        return self._remember(document, self._new_shadow(cursor, parts))

    def forget(self, document: str) -> None:
        self._shadows.pop(document, None)


def _collect_delta(shadow: _Shadow, name: str) -> Callable[[Any], None]:
    # One parameter: pycrdt passes the transaction too to a callback that takes two.
    def collect(event: Any) -> None:
        shadow.deltas.setdefault(name, []).extend(event.delta)

    return collect
