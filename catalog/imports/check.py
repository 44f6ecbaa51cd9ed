"""The import's first pass: validate every record, and the references and keys between them.

Memory stays flat however long the file is: what survives a record is a compact trace of it.
Titles and talent are kept in dicts (other records name them, and a studio has far fewer of
them than assets), and the studio's own keys of other types in a `KeyFilter`; the keys that
must only be unique (assets, grants, consents, credits) are kept as 64-bit hashes, 8 bytes
each, and a hash seen twice is confirmed against the real keys by a second reading of the file
(only then, so a clean file is read once). Valid records go, already normalized, to a spill on
disk that the second pass writes from, unless a `sink` takes them first (on PostgreSQL,
`catalog.imports.stream` writes new records at once).
"""

from __future__ import annotations

import marshal
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from catalog.imports.parse import FieldError, ReadRow, Record, validate_record
from catalog.models import CHILD_KINDS

ERRORS_KEPT = 1000
SPILL_BATCH = 5000
# A KeyFilter holds this many keys exactly, and more in a Bloom filter of this many bits a key.
EXACT_KEYS = 100_000
FILTER_BITS_PER_KEY = 64

# Title records go to three spills by depth, so the second pass inserts parents first.
TITLE_TIERS = {"film": 0, "series": 0, "season": 1, "episode": 2}
# The spills, in the order the second pass applies them.
STREAMS = ("talent", "title0", "title1", "title2", "asset", "rights", "consent", "credit")


@dataclass(frozen=True, slots=True)
class ExistingTitle:
    """What the first pass needs of a title already in the studio's catalog."""

    id: str
    kind: str
    parent_id: str | None
    root_id: str | None


@dataclass(slots=True)
class FileTitle:
    """A title record of the file: where it is, and (when valid) its kind and parent."""

    row: int
    kind: str | None
    parent: str | None
    valid: bool


class ErrorLog:
    """Every error is counted; the `cap` with the lowest row numbers are kept for the report."""

    def __init__(self, cap: int = ERRORS_KEPT) -> None:
        self.cap = cap
        self.total = 0
        self.bad_rows: set[int] = set()
        self._items: list[tuple[int, str | None, str]] = []

    def add(self, row: int, field_name: str | None, message: str) -> None:
        self.total += 1
        self.bad_rows.add(row)
        self._items.append((row, field_name, message))
        if len(self._items) > 4 * self.cap:
            self._trim()

    def extend(self, row: int, errors: Iterable[FieldError]) -> None:
        for field_name, message in errors:
            self.add(row, field_name, message)

    def _trim(self) -> None:
        self._items.sort(key=lambda item: item[0])
        del self._items[self.cap :]

    def report(self) -> list[dict[str, Any]]:
        """Return the kept errors, by row, as `{row, field, message}`."""
        self._trim()
        return [{"row": r, "field": f, "message": m} for r, f, m in self._items]


class HashedKeys:
    """A multiset of keys held as 64-bit hashes in 256 arrays: 8 bytes a key."""

    def __init__(self) -> None:
        self._buckets = [array("q") for _ in range(256)]

    def add(self, key: object) -> None:
        digest = hash(key)
        self._buckets[digest & 255].append(digest)

    def repeated(self) -> set[int]:
        """Return the hashes added more than once (a repeated key, or rarely a collision)."""
        found: set[int] = set()
        for bucket in self._buckets:
            seen: set[int] = set()
            for digest in bucket:
                if digest in seen:
                    found.add(digest)
                seen.add(digest)
        return found


class KeyFilter:
    """The external ids a studio already uses for one record type, held compactly.

    `key in filter` is False for a key that is certainly not among them, and True for one that
    is, or (rarely) for a new key taken for one of them; such a record just goes to the second
    pass, which looks it up. Up to `EXACT_KEYS` keys, a set of their 64-bit hashes (a new key is
    taken for a known one once in billions); past that a Bloom filter of one probe into 64 to 128
    bits a key (16 MB for 2 million keys, where the set would take 120 MB, and half the time to
    build; a new key is taken for a known one once in 64 at most).
    """

    __slots__ = ("_bits", "_exact", "_mask", "count")

    def __init__(self, hashes: array[int]) -> None:
        """Hold the keys whose `hash()` values are `hashes`."""
        self.count = len(hashes)
        self._exact: frozenset[int] | None = None
        self._bits, self._mask = bytearray(), 0
        if self.count <= EXACT_KEYS:
            self._exact = frozenset(hashes)
            return
        size = 64
        while size < self.count * FILTER_BITS_PER_KEY:
            size *= 2
        bits = self._bits = bytearray(size // 8)
        mask = self._mask = size // 8 - 1
        # Bits 0-2 of the hash pick the bit, bits 3 and up the byte.
        for digest in hashes:
            bits[(digest >> 3) & mask] |= 1 << (digest & 7)

    @classmethod
    def of(cls, keys: Iterable[str]) -> KeyFilter:
        return cls(array("q", map(hash, keys)))

    def __contains__(self, key: object) -> bool:
        digest = hash(key)
        if self._exact is not None:
            return digest in self._exact
        return bool(self._bits[(digest >> 3) & self._mask] >> (digest & 7) & 1)


class Spill:
    """Valid records, normalized, in marshal batches in a directory: read back in order."""

    def __init__(self, directory: Path, streams: tuple[str, ...] = STREAMS) -> None:
        self.directory = directory
        self.streams = streams
        self.counts = dict.fromkeys(streams, 0)
        self._buffers: dict[str, list[Record]] = {name: [] for name in streams}
        self._files: dict[str, IO[bytes]] = {}

    def add(self, stream: str, record: Record) -> None:
        buffer = self._buffers[stream]
        buffer.append(record)
        if len(buffer) >= SPILL_BATCH:
            self._flush(stream)

    def _flush(self, stream: str) -> None:
        buffer = self._buffers[stream]
        if not buffer:
            return
        out = self._files.get(stream)
        if out is None:
            out = self._files[stream] = (self.directory / f"{stream}.spill").open("wb")
        # Length-prefixed blobs: marshal.load() on a file reads it in tiny pieces.
        blob = marshal.dumps(buffer)
        out.write(len(blob).to_bytes(8, "little"))
        out.write(blob)
        self.counts[stream] += len(buffer)
        buffer.clear()

    def close(self) -> None:
        for stream in self.streams:
            self._flush(stream)
        for out in self._files.values():
            out.close()

    def batches(self, stream: str) -> Iterator[list[Record]]:
        """Yield the stream's records in batches, in file order."""
        path = self.directory / f"{stream}.spill"
        if not path.exists():
            return
        with path.open("rb") as spilled:
            while size := int.from_bytes(spilled.read(8), "little"):
                # Only ever reads back what this process wrote a moment ago.
                batch: list[Record] = marshal.loads(spilled.read(size))  # noqa: S302
                yield batch


def _credit_key(values: Record) -> tuple[str, str, str]:
    return values[0], values[1], values[2]


def _first(values: Record) -> str:
    return str(values[0])


# Record types whose keys only need to be unique: how to get the key and how to name a repeat.
_UNIQUE: dict[str, tuple[Callable[[Record], object], str]] = {
    "asset": (_first, "external_id"),
    "rights": (_first, "external_id"),
    "consent": (_first, "external_id"),
    "credit": (_credit_key, "talent_external_id"),
}


@dataclass
class Check:
    """The first pass over one file, for one studio whose current titles and talent are given."""

    existing_titles: dict[str, ExistingTitle]
    existing_talent: dict[str, str]
    spill: Spill
    # The external ids of the studio's assets, grants and consents, by record type.
    existing_keys: dict[str, KeyFilter] = field(default_factory=dict)
    errors: ErrorLog = field(default_factory=ErrorLog)
    rows_total: int = 0
    titles: dict[str, FileTitle] = field(default_factory=dict)
    talent: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    # Offered each valid record first (catalog.imports.stream): True if it took it.
    sink: Callable[[str, Record], bool] | None = None
    _keys: dict[str, HashedKeys] = field(default_factory=dict)
    _title_refs: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    _talent_refs: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._keys = {kind: HashedKeys() for kind in _UNIQUE}

    @property
    def rows_ok(self) -> int:
        return self.rows_total - len(self.errors.bad_rows)

    def feed(self, records: Iterable[ReadRow]) -> None:
        """Check each record on its own and note what later checks need."""
        for row, fields, read_errors in records:
            self.rows_total += 1
            if fields is None:
                self.errors.extend(row, read_errors)
                continue
            kind, values, errors = validate_record(fields)
            if read_errors:
                # A cell that could not be read is reported once, not again as "required".
                unreadable = {name for name, _ in read_errors}
                errors = read_errors + [e for e in errors if e[0] not in unreadable]
            if kind is None or values is None:
                self.errors.extend(row, errors)
                continue
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if kind == "title":
                errors += self._title(row, values, valid=not errors)
            elif kind == "talent":
                errors += self._talent(row, values)
            if errors:
                self.errors.extend(row, errors)
                continue
            self._references(row, kind, values)
            if kind in _UNIQUE:
                key_of, _ = _UNIQUE[kind]
                self._keys[kind].add(key_of(values))
            # Once a row is bad nothing will be written, so there is no more need to spill.
            if not self.errors.total:
                self._store(row, kind, values)

    def _title(self, row: int, values: Record, *, valid: bool) -> list[FieldError]:
        external_id = values[0]
        if external_id is None:
            return []
        first = self.titles.get(external_id)
        if first is not None:
            return [("external_id", f"duplicate title {external_id!r}: already on row {first.row}")]
        kind, parent = values[2], values[3]
        self.titles[external_id] = FileTitle(row, kind if valid else None, parent, valid)
        existing = self.existing_titles.get(external_id)
        if not valid or existing is None:
            return []
        # catalog.titles: kind and parent are fixed at creation.
        if kind != existing.kind:
            return [
                (
                    "kind",
                    f"cannot change from {existing.kind} to {kind}: a title's kind is fixed "
                    "at creation (delete it and import it again)",
                )
            ]
        return []

    def _talent(self, row: int, values: Record) -> list[FieldError]:
        external_id = values[0]
        if external_id is None:
            return []
        first = self.talent.get(external_id)
        if first is not None:
            return [("external_id", f"duplicate talent {external_id!r}: already on row {first}")]
        self.talent[external_id] = row
        return []

    def _references(self, row: int, kind: str, values: Record) -> None:
        if kind in ("asset", "rights", "credit"):
            title = values[0] if kind == "credit" else values[1]
            if title not in self.titles and title not in self.existing_titles:
                self._title_refs.setdefault(title, []).append((row, "title_external_id"))
        if kind in ("credit", "consent"):
            talent = values[1]
            if talent not in self.talent and talent not in self.existing_talent:
                self._talent_refs.setdefault(talent, []).append((row, "talent_external_id"))

    def _store(self, row: int, kind: str, values: Record) -> None:
        if kind == "title":
            stream, record = f"title{TITLE_TIERS[values[2]]}", (row, *values)
        elif kind == "asset":
            # One file name: `filename` if given, else the last segment of `storage_key`.
            file_name = values[4] or values[3]
            stream, record = "asset", (row, *values[:3], file_name, *values[5:])
        else:
            stream, record = kind, (row, *values)
        if self.sink is None or not self.sink(stream, record):
            self.spill.add(stream, record)

    def finish(self, reread: Callable[[], Iterable[ReadRow]]) -> None:
        """Check what needs the whole file: references, parents, repeated keys."""
        for external_id, refs in self._title_refs.items():
            if external_id not in self.titles:
                for row, name in refs:
                    self.errors.add(
                        row, name, f"no title {external_id!r} in this file or in the catalog"
                    )
        for external_id, refs in self._talent_refs.items():
            if external_id not in self.talent:
                for row, name in refs:
                    self.errors.add(
                        row, name, f"no talent {external_id!r} in this file or in the catalog"
                    )
        self._check_parents()
        repeated = {kind: keys.repeated() for kind, keys in self._keys.items()}
        if any(repeated.values()):
            self._report_repeats(repeated, reread())

    def _check_parents(self) -> None:
        for external_id, title in self.titles.items():
            if not title.valid or title.parent is None:
                continue
            in_file = self.titles.get(title.parent)
            existing = self.existing_titles.get(title.parent)
            if in_file is not None:
                parent_kind = in_file.kind
            elif existing is not None:
                parent_kind = existing.kind
            else:
                self.errors.add(
                    title.row,
                    "parent_external_id",
                    f"no title {title.parent!r} in this file or in the catalog",
                )
                continue
            allowed = [kind for kind, children in CHILD_KINDS.items() if title.kind in children]
            if parent_kind is not None and parent_kind not in allowed:
                self.errors.add(
                    title.row,
                    "parent_external_id",
                    f"the parent of a {title.kind} is a {' or '.join(allowed)}, and "
                    f"{title.parent!r} is a {parent_kind}",
                )
                continue
            current = self.existing_titles.get(external_id)
            if current is not None:
                wanted = existing.id if existing is not None else None
                if wanted != current.parent_id:
                    self.errors.add(
                        title.row,
                        "parent_external_id",
                        "cannot move a title to another parent: the parent is fixed at "
                        "creation (delete the title and import it again)",
                    )

    def _report_repeats(self, repeated: dict[str, set[int]], records: Iterable[ReadRow]) -> None:
        # A second reading, only of the keys under suspicion, tells real repeats from the
        # (very rare) hash collision and finds the row each key first appeared on.
        first: dict[str, dict[object, int]] = {kind: {} for kind in repeated}
        for row, fields, read_errors in records:
            if fields is None or read_errors:
                continue
            kind, values, errors = validate_record(fields)
            if kind not in repeated or errors or values is None or not repeated[kind]:
                continue
            key_of, field_name = _UNIQUE[kind]
            key = key_of(values)
            if hash(key) not in repeated[kind]:
                continue
            seen = first[kind]
            if key in seen:
                self.errors.add(row, field_name, _repeat_message(kind, key, seen[key]))
            else:
                seen[key] = row


def _repeat_message(kind: str, key: object, first_row: int) -> str:
    if kind == "credit":
        title, talent, role = cast(tuple[str, str, str], key)
        return (
            f"duplicate credit: {talent!r} is already credited as {role} on {title!r} "
            f"on row {first_row}"
        )
    noun = {"asset": "asset", "rights": "rights grant", "consent": "consent"}[kind]
    return f"duplicate {noun} {key!r}: already on row {first_row}"
