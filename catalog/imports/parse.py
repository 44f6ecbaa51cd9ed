"""The bulk import format: read CSV or JSON Lines records and validate each one on its own.

Every record has a `type` and the fields of that resource (API.md, "Bulk import"), with references
by external id. `read_records` yields `(row, fields)` with values typed as in JSON (CSV cells are
converted by column); `validate_record` checks one record and returns its normalized values as a
flat tuple (the shape the importer spills to disk between its passes), or the field errors.

Row numbers are 1-based line numbers in the file: in a CSV the header is row 1, so the first
record is row 2, as a spreadsheet numbers it; a quoted cell spanning lines counts from its first.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterator
from datetime import date
from typing import IO, Any

import orjson

from catalog.assets import (
    MAX_BYTE_SIZE,  # S3's largest object: masters go up in parts
    sanitize_filename,
)
from catalog.codes import normalize_language, normalize_territory
from catalog.coverage import ALL_USES, ATTRIBUTES
from catalog.eidr import validate_eidr
from catalog.models import ASSET_KINDS, CREDIT_ROLES, TITLE_KINDS, VISIBILITIES
from catalog.titles import MAX_GENRE_LENGTH, MAX_GENRES, MAX_YEAR, MIN_YEAR
from marketplace.core import json_input

__all__ = [
    "FIELDS",
    "RECORD_TYPES",
    "FieldError",
    "Record",
    "detect_format",
    "is_plain_file_name",
    "read_records",
    "validate_record",
]

RECORD_TYPES = ("title", "asset", "rights", "talent", "credit", "consent")

# (field, message); field None when the whole row is at fault (not JSON, no such type).
FieldError = tuple[str | None, str]
Record = tuple[Any, ...]
# One record as read: (row, its fields typed as in JSON or None if unreadable, read errors).
ReadRow = tuple[int, dict[str, Any] | None, list[FieldError]]
Converter = Callable[[Any], Any]

MAX_EXTERNAL_ID = 200
MAX_STORAGE_KEY = 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Names sanitize_filename (catalog.assets) leaves as they are.
_SAFE_NAME = re.compile(r"[A-Za-z0-9-][A-Za-z0-9._-]{0,118}[A-Za-z0-9-]|[A-Za-z0-9-]")
_INFINITY = math.inf
# orjson reads an integer past 64 bits as a float: one at least this large (see _read_jsonl).
_WIDE = float(2**63)
_CSV_LIST_SEPARATOR = "|"
_CSV_TRUE = frozenset({"true", "yes", "1"})
_CSV_FALSE = frozenset({"false", "no", "0"})


# --- converters: take a JSON-typed value, return the normalized one or raise ValueError -------


def _text(max_length: int) -> Converter:
    def convert(value: Any) -> str:
        if value.__class__ is not str:
            raise ValueError("must be a string")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        text: str = value
        return text

    return convert


def _identifier(value: Any) -> str:
    if value.__class__ is not str:
        raise ValueError("must be a string")
    if len(value) > MAX_EXTERNAL_ID:
        raise ValueError(f"must be at most {MAX_EXTERNAL_ID} characters")
    if not value.isprintable():
        raise ValueError("must not contain control characters")
    text: str = value
    return text


def _choice(options: tuple[str, ...]) -> Converter:
    allowed = frozenset(options)
    message = f"must be one of {', '.join(options)}"

    def convert(value: Any) -> str:
        if value.__class__ is not str or value not in allowed:
            raise ValueError(message)
        text: str = value
        return text

    return convert


def _integer(low: int, high: int) -> Converter:
    def convert(value: Any) -> int:
        # `type is int`: JSON's true and false are not numbers here.
        if value.__class__ is not int:
            raise ValueError("must be an integer")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        number: int = value
        return number

    return convert


def _number(value: Any) -> float:
    if value.__class__ is not float and value.__class__ is not int:
        raise ValueError("must be a number")
    number = float(value)
    # Also false for NaN, which compares false with everything.
    if not 0.0 <= number < _INFINITY:
        raise ValueError("must not be negative")
    return number


def _boolean(value: Any) -> bool:
    if value.__class__ is not bool:
        raise ValueError("must be true or false")
    flag: bool = value
    return flag


def _iso_date(value: Any) -> str:
    # Kept as the ISO text: what SQLite stores, and what PostgreSQL's COPY reads.
    if value.__class__ is not str or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date") from None
    text: str = value
    return text


def _strings(value: Any, max_items: int) -> list[str]:
    if value.__class__ is not list or not all(item.__class__ is str for item in value):
        raise ValueError("must be a list of strings")
    if len(value) > max_items:
        raise ValueError(f"must have at most {max_items} entries")
    return value


def _territories(value: Any) -> list[str]:
    # Sorted and unique, as catalog.rights stores them.
    codes = sorted({normalize_territory(item) for item in _strings(value, 300)})
    if not codes:
        raise ValueError("must name at least one territory")
    return codes


def _subset(options: tuple[str, ...], what: str) -> Converter:
    """A non-empty subset of `options`, in their canonical order (as the catalog stores it)."""
    allowed = frozenset(options)

    def convert(value: Any) -> list[str]:
        wanted = {item.strip() for item in _strings(value, len(options) * 4)}
        unknown = sorted(wanted - allowed)
        if unknown:
            raise ValueError(f"unknown {what} {unknown[0]!r}: expected {', '.join(options)}")
        if not wanted:
            raise ValueError(f"must name at least one {what}")
        return [option for option in options if option in wanted]

    return convert


def _genres(value: Any) -> list[str]:
    # Trimmed, lower-cased, de-duplicated in order: catalog.titles.normalize_genres.
    result: dict[str, None] = {}
    for item in _strings(value, 100):
        genre = " ".join(item.split()).lower()
        if not genre or len(genre) > MAX_GENRE_LENGTH:
            raise ValueError(f"each genre is 1 to {MAX_GENRE_LENGTH} characters")
        result[genre] = None
    if len(result) > MAX_GENRES:
        raise ValueError(f"at most {MAX_GENRES} genres")
    return list(result)


def _eidr(value: Any) -> str:
    return validate_eidr(value)


def _language(value: Any) -> str:
    if value.__class__ is not str:
        raise ValueError("must be a string")
    return normalize_language(value)


def _sha256(value: Any) -> str:
    if value.__class__ is not str or not _SHA256.fullmatch(value):
        lowered = value.lower() if value.__class__ is str else ""
        if not _SHA256.fullmatch(lowered):
            raise ValueError("must be 64 hexadecimal digits (the SHA-256 of the file)")
        return str(lowered)
    text: str = value
    return text


def is_plain_file_name(name: str) -> bool:
    """Whether `name` is one that `catalog.assets.sanitize_filename` returns unchanged."""
    return _SAFE_NAME.fullmatch(name) is not None


def _file_name(value: Any) -> str | None:
    # Only the last segment is kept, sanitized as the asset routes do (catalog.assets): the
    # object always lives under the server-chosen key of its studio, title and asset.
    if value.__class__ is not str:
        raise ValueError("must be a string")
    if len(value) > MAX_STORAGE_KEY:
        raise ValueError(f"must be at most {MAX_STORAGE_KEY} characters")
    base: str = value.rpartition("/")[2]
    # The common case, a plain safe name, is what sanitize_filename returns unchanged.
    if "\\" not in value and _SAFE_NAME.fullmatch(base):
        return base
    return sanitize_filename(value)


def _external_ids(value: Any) -> dict[str, str]:
    if value.__class__ is not dict:
        raise ValueError("must be an object of source: id")
    if len(value) > 20:
        raise ValueError("must have at most 20 entries")
    result = {}
    for source, identifier in value.items():
        if not isinstance(identifier, str) or not identifier.strip() or len(identifier) > 200:
            raise ValueError(f"the id for {source!r} must be a non-empty string")
        if not source.strip() or len(source) > 50:
            raise ValueError("sources must be non-empty names of at most 50 characters")
        result[source.strip()] = identifier.strip()
    return result


# --- the fields of each record type, in the order of the normalized tuple --------------------

# field -> (converter, required, default)
_Spec = tuple[tuple[str, Converter, bool, Any], ...]

FIELDS: dict[str, _Spec] = {
    "title": (
        ("external_id", _identifier, True, None),
        ("eidr_id", _eidr, False, None),
        ("kind", _choice(TITLE_KINDS), True, None),
        ("parent_external_id", _identifier, False, None),
        ("name", _text(500), True, None),
        ("original_language", _language, False, None),
        ("genres", _genres, False, []),
        ("release_year", _integer(MIN_YEAR, MAX_YEAR), False, None),
        ("synopsis", _text(20_000), False, None),
        ("visibility", _choice(VISIBILITIES), False, "private"),
    ),
    "asset": (
        ("external_id", _identifier, True, None),
        ("title_external_id", _identifier, True, None),
        ("kind", _choice(ASSET_KINDS), True, None),
        ("storage_key", _file_name, False, None),
        ("filename", _file_name, False, None),
        ("byte_size", _integer(1, MAX_BYTE_SIZE), True, None),
        ("sha256", _sha256, True, None),
        ("duration_seconds", _number, False, None),
        ("width", _integer(1, 100_000), False, None),
        ("height", _integer(1, 100_000), False, None),
        ("fps", _number, False, None),
        ("codec", _text(50), False, None),
        ("language", _language, False, None),
    ),
    "rights": (
        ("external_id", _identifier, True, None),
        ("title_external_id", _identifier, True, None),
        ("territories", _territories, True, None),
        ("start", _iso_date, True, None),
        ("end", _iso_date, True, None),
        ("permitted_uses", _subset(ALL_USES, "use"), True, None),
        ("exclusive_available", _boolean, False, False),
    ),
    "talent": (
        ("external_id", _identifier, True, None),
        ("name", _text(300), True, None),
        ("external_ids", _external_ids, False, {}),
    ),
    "credit": (
        ("title_external_id", _identifier, True, None),
        ("talent_external_id", _identifier, True, None),
        ("role", _choice(CREDIT_ROLES), True, None),
    ),
    "consent": (
        ("external_id", _identifier, True, None),
        ("talent_external_id", _identifier, True, None),
        ("attributes", _subset(ATTRIBUTES, "attribute"), True, None),
        ("permitted_uses", _subset(ALL_USES, "use"), True, None),
        ("territories", _territories, True, None),
        ("start", _iso_date, True, None),
        ("end", _iso_date, True, None),
    ),
}

_ALLOWED = {kind: frozenset(("type", *(f[0] for f in spec))) for kind, spec in FIELDS.items()}
_ALL_FIELDS = frozenset().union(*_ALLOWED.values())
_TYPE_MESSAGE = f"must be one of {', '.join(RECORD_TYPES)}"
# Fields whose value is free text: kept as written (blank means absent all the same).
_VERBATIM = frozenset({"synopsis"})
_PLANS = {
    kind: tuple((*field, field[0] not in _VERBATIM) for field in spec)
    for kind, spec in FIELDS.items()
}


def validate_record(fields: dict[str, Any]) -> tuple[str | None, Record | None, list[FieldError]]:
    """Check one record; return (type, normalized values in FIELDS order, errors)."""
    raw = fields.get("type")
    kind = raw.strip() if isinstance(raw, str) else None
    plan = _PLANS.get(kind) if kind is not None else None
    if kind is None or plan is None:
        return None, None, [("type", _TYPE_MESSAGE if raw not in (None, "") else "required")]
    errors: list[FieldError] = []
    if not _ALLOWED[kind].issuperset(fields):
        for name in sorted(fields.keys() - _ALLOWED[kind]):
            errors.append((name, f"not a field of a {kind} record"))
    values: list[Any] = []
    get = fields.get
    for name, convert, required, default, strip in plan:
        value = get(name)
        if value.__class__ is str:
            # Identifiers and codes never mean surrounding blanks; free text keeps them.
            stripped = value.strip()
            if strip:
                value = stripped
            if not stripped:
                value = None
        if value is None:
            if required:
                errors.append((name, "required"))
            values.append(default)
            continue
        try:
            values.append(convert(value))
        except ValueError as exc:
            errors.append((name, str(exc)))
            values.append(None)
    if not errors:
        errors.extend(_cross_field(kind, values))
    return kind, tuple(values), errors


def _cross_field(kind: str, values: list[Any]) -> list[FieldError]:
    if kind in ("rights", "consent"):
        start, end = (values[3], values[4]) if kind == "rights" else (values[5], values[6])
        if end < start:  # ISO dates compare as text
            return [("end", f"must not be before start ({start})")]
    elif kind == "title":
        parent, title_kind = values[3], values[2]
        if title_kind in ("film", "series") and parent is not None:
            return [("parent_external_id", f"a {title_kind} has no parent")]
        if title_kind in ("season", "episode") and parent is None:
            return [("parent_external_id", f"required: a {title_kind} belongs to a parent title")]
        if parent is not None and parent == values[0]:
            return [("parent_external_id", "a title cannot be its own parent")]
    return []


# --- readers ----------------------------------------------------------------------------------


def detect_format(head: bytes, filename: str | None = None) -> str:
    """Return `csv` or `jsonl`: from the file name's extension, else from the first byte."""
    name = (filename or "").lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    stripped = head.removeprefix(codecs.BOM_UTF8).lstrip()
    return "jsonl" if stripped.startswith(b"{") else "csv"


def read_records(stream: IO[bytes], fmt: str) -> Iterator[ReadRow]:
    """Yield (row, fields, errors) for each record; fields None when the row is unreadable."""
    if fmt == "jsonl":
        return _read_jsonl(stream)
    if fmt == "csv":
        return _read_csv(stream)
    raise ValueError(f"unknown import format {fmt!r}")


def _read_jsonl(stream: IO[bytes]) -> Iterator[ReadRow]:
    # orjson reads the usual line, a JSON object, in less than half the time of the json module.
    # It accepts less than the json module does (NaN, Infinity, lone surrogates, ...), and reads
    # integers past 64 bits as floats: such lines, and any line it refuses, are read again by
    # the json module, so that every line reads as it always has and errors say the same.
    loads = orjson.loads
    for row, line in enumerate(stream, 1):
        if row == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        try:
            fields = loads(line)
        except orjson.JSONDecodeError:
            fields = None
        # A NUL (escaped: JSON holds it no other way) is refused by the json module's reading.
        if fields.__class__ is dict and not _wide_integer(fields) and b"\\u0000" not in line:
            yield row, fields, []
            continue
        read = _read_line(row, line)
        if read is not None:
            yield read


def _wide_integer(fields: dict[str, Any]) -> bool:
    """Whether a value is a float that orjson may have made of an integer past 64 bits.

    Only top-level values matter: a number inside a list or an object is refused whatever its
    type, with a message that does not name the type.
    """
    # A loop: any() over a generator takes half as long again.
    for value in fields.values():  # noqa: SIM110
        if value.__class__ is float and not -_WIDE < value < _WIDE:
            return True
    return False


def _read_line(row: int, line: bytes) -> ReadRow | None:
    """Read one line as the json module does, within core.json_input's bounds (None if blank).

    NaN, Infinity and numbers past a double are read (the fields' checks name them), but not
    nesting past json_input.MAX_DEPTH, integers past MAX_INTEGER_DIGITS or lone surrogates,
    which nothing could store: the line is reported, with the field that holds them.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return row, None, [(None, "not UTF-8 text")]
    if not text or text.isspace():
        return None
    try:
        fields = json_input.loads(text, finite=False)
    except json_input.Refused as exc:
        return row, None, [_refused(exc)]
    except ValueError as exc:
        return row, None, [(None, f"not valid JSON: {_json_reason(exc)}")]
    if not isinstance(fields, dict):
        return row, None, [(None, "must be a JSON object, one per line")]
    return row, fields, []


def _refused(exc: json_input.Refused) -> FieldError:
    """The record's field that holds the refused value, and where in it."""
    field, *inner = exc.path or (None,)
    if not isinstance(field, str):
        return None, exc.message  # the line itself: an array nested too deep, say
    where = ".".join(str(step) for step in inner)
    return field, f"{where}: {exc.message}" if where else exc.message


def _json_reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return "cannot be decoded"


# CSV columns that are not text, and how to read a cell of each.
def _csv_integer(cell: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise ValueError("must be an integer") from None


def _csv_number(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise ValueError("must be a number") from None


def _csv_boolean(cell: str) -> bool:
    lowered = cell.strip().lower()
    if lowered in _CSV_TRUE:
        return True
    if lowered in _CSV_FALSE:
        return False
    raise ValueError("must be true or false")


def _csv_list(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(_CSV_LIST_SEPARATOR) if item.strip()]


def _csv_mapping(cell: str) -> dict[str, str]:
    # `imdb:nm0000123|tmdb:31`: source and id split at the first colon.
    result = {}
    for item in _csv_list(cell):
        source, colon, identifier = item.partition(":")
        if not colon:
            raise ValueError("must be source:id pairs separated by |, e.g. imdb:nm0000123")
        result[source.strip()] = identifier.strip()
    return result


_CSV_CELLS: dict[str, Callable[[str], Any]] = {
    "release_year": _csv_integer,
    "byte_size": _csv_integer,
    "width": _csv_integer,
    "height": _csv_integer,
    "duration_seconds": _csv_number,
    "fps": _csv_number,
    "exclusive_available": _csv_boolean,
    "genres": _csv_list,
    "territories": _csv_list,
    "permitted_uses": _csv_list,
    "attributes": _csv_list,
    "external_ids": _csv_mapping,
}


def _read_csv(stream: IO[bytes]) -> Iterator[ReadRow]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from _csv_rows(csv.reader(text))
    finally:
        text.detach()  # the caller owns the underlying stream


def _next_row(reader: Any, row: int) -> list[str] | ReadRow | None:
    """The next row's cells; None at the end; an error row if the text cannot be read."""
    try:
        cells: list[str] = next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        return row, None, [(None, f"not valid CSV: {exc}")]
    except UnicodeDecodeError:
        return row, None, [(None, "not UTF-8 text")]
    return cells


def _csv_rows(reader: Any) -> Iterator[ReadRow]:
    header = _next_row(reader, 1)
    if header is None:
        return
    if isinstance(header, tuple):
        yield header
        return
    columns = [name.strip() for name in header]
    problems: list[FieldError] = []
    if not columns or columns[0] != "type":
        problems.append(("type", "the first column must be `type`"))
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            problems.append((name, "column appears twice"))
        elif name and name not in _ALL_FIELDS:
            problems.append((name, "unknown column"))
        seen.add(name)
    if problems:
        yield 1, None, problems
        return
    width = len(columns)
    cells = [(index, name, _CSV_CELLS.get(name)) for index, name in enumerate(columns) if name]
    row = reader.line_num + 1
    while True:
        values = _next_row(reader, row)
        if values is None:
            return
        if isinstance(values, tuple):
            yield values
            if values[2][0][1] == "not UTF-8 text":
                return  # a text stream cannot resume after bytes it could not decode
            row = reader.line_num + 1
            continue
        start, row = row, reader.line_num + 1
        if not values or not any(v.strip() for v in values):
            continue
        if len(values) > width:
            yield start, None, [(None, f"has {len(values)} cells but the header has {width}")]
            continue
        fields: dict[str, Any] = {}
        errors: list[FieldError] = []
        for index, name, parse in cells:
            if index >= len(values):
                break
            cell = values[index]
            if not cell.strip():
                continue
            if parse is None:
                fields[name] = cell
                continue
            try:
                fields[name] = parse(cell)
            except ValueError as exc:
                errors.append((name, str(exc)))
        yield start, fields, errors
