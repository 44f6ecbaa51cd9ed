"""JSON from clients, read within bounds: request bodies and the import's JSON Lines.

The json module reads documents that nothing downstream can hold, and some it cannot read at
all: nesting a thousand levels deep raises RecursionError, an integer of 4,300 digits or more
raises ValueError (Python's int-from-text limit), `1e400` becomes infinity, and `"\\ud800"`
becomes a lone surrogate, a str that cannot be encoded to UTF-8, so the database driver fails
on it. Each was a 500. `loads` reads what the json module reads and refuses, naming where in
the document, any of:

- nesting deeper than MAX_DEPTH arrays and objects;
- an integer of more than MAX_INTEGER_DIGITS digits (a field's own range check then refuses
  any value its column cannot hold: far fewer digits);
- with `finite=True`, NaN, Infinity and numbers too large for a double;
- a lone surrogate (U+D800 to U+DFFF) in a string or a member name;
- a NUL character (U+0000) in a string or a member name: PostgreSQL's text cannot hold it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_INTEGER_DIGITS", "Refused", "loads"]

# No body or import record of the API nests more than four levels; 32 leaves room and keeps a
# walk of the document short.
MAX_DEPTH = 32
# Past 2**64 (20 digits), so that a number too large for its field reaches that field's range
# check and its message; far below 4,300, where int() refuses and its cost grows quadratically.
MAX_INTEGER_DIGITS = 100

# A JSON escape of a UTF-16 surrogate, paired or not: the only way one gets into a str decoded
# from UTF-8 bytes (a UTF-8 decoder refuses an encoded surrogate).
# The same for NUL, which JSON can only carry escaped.
_SURROGATE_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")
_SURROGATE = re.compile("[\ud800-\udfff\x00]")

Path = tuple[str | int, ...]


class Refused(ValueError):
    """Valid JSON the API does not accept; `path` leads to the value, () for the whole body."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message

    @property
    def field(self) -> str | None:
        """The dotted path (`pricing.amount_cents`, `title_ids.0`), None for the whole body."""
        return ".".join(str(step) for step in self.path) or None


class _Marker:
    """Stands where the decoder met a number it must not return; the walk reports it."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def loads(data: bytes | str, *, finite: bool = True) -> Any:
    """Read one JSON document; raise json.JSONDecodeError if it is not JSON, Refused as above.

    Bytes must be UTF-8 (UnicodeDecodeError otherwise). `finite=False` reads NaN, Infinity and
    overflowing numbers as the json module does (the importer reports them by field itself).
    """
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    marked = False

    def parse_int(digits: str) -> Any:
        nonlocal marked
        if len(digits) - digits.startswith("-") > MAX_INTEGER_DIGITS:
            marked = True
            return _Marker(f"an integer of more than {MAX_INTEGER_DIGITS} digits")
        return int(digits)

    def parse_float(literal: str) -> Any:
        nonlocal marked
        number = float(literal)
        if finite and math.isinf(number):
            marked = True
            return _Marker("a number too large for a double")
        return number

    def parse_constant(name: str) -> Any:
        nonlocal marked
        if finite:
            marked = True
            return _Marker(f"{name} is not a JSON number")
        return float(name)

    decoder = json.JSONDecoder(
        parse_int=parse_int, parse_float=parse_float, parse_constant=parse_constant
    )
    try:
        value = decoder.decode(text)
    except RecursionError:
        # Thousands of levels: the decoder gave up before the walk could name where.
        raise Refused((), f"nested deeper than {MAX_DEPTH} levels") from None
    strings = _SURROGATE_ESCAPE.search(text) is not None or (
        not isinstance(data, bytes) and _SURROGATE.search(text) is not None
    )
    # Fewer brackets than MAX_DEPTH cannot nest deeper: most bodies need no walk at all.
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    if marked or strings or deep:
        _walk(value, (), 0, strings)
    return value


def _walk(value: Any, path: Path, depth: int, strings: bool) -> None:
    """Raise Refused for the first value out of bounds, in document order."""
    if value.__class__ is dict:
        if depth >= MAX_DEPTH:
            raise Refused(path, f"nested deeper than {MAX_DEPTH} levels")
        for name, item in value.items():
            if strings and _SURROGATE.search(name):
                raise Refused(path, f"a member name {_surrogate_message(name)}")
            _walk(item, (*path, name), depth + 1, strings)
    elif value.__class__ is list:
        if depth >= MAX_DEPTH:
            raise Refused(path, f"nested deeper than {MAX_DEPTH} levels")
        for index, item in enumerate(value):
            _walk(item, (*path, index), depth + 1, strings)
    elif value.__class__ is str:
        if strings and _SURROGATE.search(value):
            raise Refused(path, f"a string {_surrogate_message(value)}")
    elif value.__class__ is _Marker:
        raise Refused(path, value.message)


def _surrogate_message(text: str) -> str:
    found = _SURROGATE.search(text)
    code = ord(found.group()) if found else 0xD800
    if code == 0:
        return "holds a NUL character (\\u0000), which cannot be stored"
    # Escaped: the message itself must be UTF-8 text, whatever the input held.
    return f"holds a lone surrogate (\\u{code:04x}), which is not Unicode text"
