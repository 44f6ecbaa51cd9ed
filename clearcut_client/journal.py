"""The pull's journal: one JSON line per event, appended, replayed on restart.

A line is written after the fact it records (a grant received, bytes written, a file
verified), so after a kill the journal never claims more than the disk holds.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FileRecord:
    asset_id: str
    path: str | None = None  # relative to the destination, once a grant named the file
    grant_ids: list[str] = field(default_factory=list)
    parts_done: dict[int, int] = field(default_factory=dict)  # part index -> bytes written
    verified_at: str | None = None
    sha256: str | None = None
    failed: str | None = None


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, FileRecord] = {}
        self.header: dict[str, Any] | None = None
        self._lock = threading.Lock()
        if path.exists():
            self._replay()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out = path.open("a", encoding="utf-8")

    def record(self, asset_id: str) -> FileRecord:
        return self.files.setdefault(asset_id, FileRecord(asset_id))

    def _replay(self) -> None:
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:  # a line cut short by a kill
                    continue
                self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "start":
            self.header = event
            return
        rec = self.record(event["asset_id"])
        if kind == "grant":
            rec.grant_ids.append(event["grant_id"])
            rec.path = event["path"]
        elif kind == "progress":
            rec.parts_done[int(event["part"])] = int(event["done"])
        elif kind == "verified":
            rec.verified_at, rec.sha256, rec.failed = event["at"], event["sha256"], None
        elif kind == "failed":
            rec.failed, rec.verified_at = event["reason"], None
            rec.parts_done.clear()

    def write(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._apply(event)
            self._out.write(json.dumps(event, separators=(",", ":")) + "\n")
            self._out.flush()

    def close(self) -> None:
        self._out.close()
