"""Splitting a document's text into chunks whose boundaries survive local edits.

The text is cut into units, each ending at a separator: a paragraph break (a blank line),
a line break, or the spaces after a sentence end. Whether a unit's end may close a chunk
is decided by the unit's own text (a hash of it), never by its position, so the same
text yields the same candidate boundaries wherever it sits. A chunk closes at the first
candidate once it holds ``min_chars``, or earlier when the next unit would take it past
``max_chars``. After an edit, the chunking before the edited unit is unchanged and the
chunking after it falls back in step at the next candidate both versions close at, so
a local edit changes only the chunks near it (content-defined chunking, as in
deduplicating backup tools).

Candidates are denser at stronger separators: a paragraph break closes a chunk more
often than a line break, which does so more often than a sentence end.

Given a token counter (the embedding model's tokenizer), chunks are also kept within
``max_tokens``, so no chunk's tail is cut off by the model's truncation: 900 characters
of English prose are ~200 tokens, but of LaTeX or Markdown with links, up to ~400. Token
counts are taken per unit and added up (the model's tokenizer splits at whitespace and
punctuation, where units end), so they are local too and keep boundaries stable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum

MIN_CHARS = 200  # a chunk shorter than this (except a document's last) takes the next unit too
MAX_CHARS = 900  # hard ceiling; ~200-250 MiniLM tokens of English, under the 256 the model reads
SPECIAL_TOKENS = 2  # [CLS] and [SEP], added to every text the model reads

# Token counts of texts, without special tokens, e.g. MiniLMEmbedding.count_tokens.
TokenCounter = Callable[[Sequence[str]], list[int]]


class Separator(IntEnum):
    NONE = 0  # end of text, or a cut inside a unit longer than max_chars
    SENTENCE = 1
    LINE = 2
    PARAGRAPH = 3


# One unit in N of each kind is a candidate boundary (chosen by the unit's hash).
CANDIDATE_ONE_IN = {Separator.SENTENCE: 6, Separator.LINE: 4, Separator.PARAGRAPH: 2}

_SEPARATOR = re.compile(
    r"\n(?:[ \t]*\n)+[ \t]*"  # paragraph break: one or more blank lines
    r"|\n"  # line break
    r"|(?<=[.!?])[ \t]+(?=\S)"  # spaces after a sentence end
)


@dataclass(frozen=True, slots=True)
class ChunkLimits:
    min_chars: int = MIN_CHARS
    max_chars: int = MAX_CHARS
    max_tokens: int = 256  # with a token counter: the model's input length, special tokens included

    def __post_init__(self) -> None:
        if not 0 < self.min_chars < self.max_chars:
            raise ValueError(f"need 0 < min_chars < max_chars, got {self.min_chars}, {self.max_chars}")
        if self.max_tokens <= SPECIAL_TOKENS:
            raise ValueError(f"max_tokens must exceed {SPECIAL_TOKENS}, got {self.max_tokens}")


@dataclass(frozen=True, slots=True)
class Chunk:
    start: int  # of the text without the leading and trailing whitespace
    end: int
    text: str  # text[start:end] of the document
    digest: str  # sha256 of text, hex

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int
    end: int
    separator: Separator


def _units(text: str, max_chars: int) -> list[_Unit]:
    units: list[_Unit] = []
    start = 0
    for match in _SEPARATOR.finditer(text):
        kind = Separator.PARAGRAPH if match.group().count("\n") > 1 else Separator.LINE
        if "\n" not in match.group():
            kind = Separator.SENTENCE
        units.extend(_cut_long(text, start, match.end(), kind, max_chars))
        start = match.end()
    if start < len(text):
        units.extend(_cut_long(text, start, len(text), Separator.NONE, max_chars))
    return units


def _cut_long(text: str, start: int, end: int, kind: Separator, max_chars: int) -> list[_Unit]:
    """One unit, or pieces of at most max_chars cut at the last whitespace that fits."""
    pieces: list[_Unit] = []
    while end - start > max_chars:
        window = text[start : start + max_chars]
        cut = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
        stop = start + cut + 1 if cut > max_chars // 2 else start + max_chars
        pieces.append(_Unit(start, stop, Separator.NONE))
        start = stop
    pieces.append(_Unit(start, end, kind))
    return pieces


def _is_candidate(text: str, unit: _Unit) -> bool:
    one_in = CANDIDATE_ONE_IN.get(unit.separator)
    if one_in is None:
        return False
    key = text[unit.start : unit.end].strip().encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "big") % one_in == 0


def _chunk(text: str, start: int, end: int) -> Chunk | None:
    raw = text[start:end]
    stripped = raw.strip()
    if not stripped:
        return None
    lead = len(raw) - len(raw.lstrip())
    begin = start + lead
    digest = hashlib.sha256(stripped.encode("utf-8", "surrogatepass")).hexdigest()
    return Chunk(begin, begin + len(stripped), stripped, digest)


def _within_tokens(
    text: str, units: list[_Unit], count: TokenCounter, budget: int
) -> list[tuple[_Unit, int]]:
    """Units with their token counts, each unit over ``budget`` split at whitespace until it fits."""
    pending = units
    done: list[tuple[_Unit, int]] = []
    while pending:
        counts = count([text[u.start : u.end] for u in pending])
        again: list[_Unit] = []
        for unit, tokens in zip(pending, counts, strict=True):
            if tokens <= budget or unit.end - unit.start < 2:
                done.append((unit, tokens))
                continue
            middle = (unit.start + unit.end) // 2
            window = text[unit.start : middle]
            cut = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
            stop = unit.start + cut + 1 if cut > 0 else middle
            again += [_Unit(unit.start, stop, Separator.NONE), _Unit(stop, unit.end, unit.separator)]
        pending = again
    done.sort(key=lambda pair: pair[0].start)
    return done


def chunk_text(
    text: str, limits: ChunkLimits | None = None, count_tokens: TokenCounter | None = None
) -> list[Chunk]:
    """The chunks of ``text`` in order; whitespace-only stretches belong to no chunk.

    With ``count_tokens``, no chunk exceeds ``limits.max_tokens`` either.
    """
    limits = limits or ChunkLimits()
    plain = _units(text, limits.max_chars)
    if count_tokens is None:
        sized = [(unit, 0) for unit in plain]
        budget = 1
    else:
        budget = limits.max_tokens - SPECIAL_TOKENS
        sized = _within_tokens(text, plain, count_tokens, budget)
    chunks: list[Chunk] = []
    chunk_start = 0
    tokens = 0
    for i, (unit, unit_tokens) in enumerate(sized):
        size = unit.end - chunk_start
        tokens += unit_tokens
        last = i == len(sized) - 1
        forced = not last and (
            size + (sized[i + 1][0].end - sized[i + 1][0].start) > limits.max_chars
            or tokens + sized[i + 1][1] > budget
        )
        if last or forced or (size >= limits.min_chars and _is_candidate(text, unit)):
            chunk = _chunk(text, chunk_start, unit.end)
            if chunk is not None:
                chunks.append(chunk)
            chunk_start = unit.end
            tokens = 0
    return chunks
