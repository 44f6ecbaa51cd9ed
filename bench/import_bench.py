"""Bulk import throughput: `import_catalog` against a bare COPY / executemany of the same rows.

For each database (a SQLite file; a fresh PostgreSQL database when one answers), in one run:
- `bare`: the rows the import writes (titles, genres, assets, grants, terms, talent, credits,
  consents), built beforehand, then written with nothing else: one COPY per table on PostgreSQL,
  executemany in batches on SQLite; the floor any importer stands on.
- `import`: the import service on the generated JSON Lines file, in a child process (the CLI's
  path, without the progress bar), for its time and its peak resident memory (`ru_maxrss`);
  `reimport`: the same file again, when every record is found unchanged.
- `second_import`: the import a studio makes next (a new season), into the same studio once
  it also holds titles with ready assets, grants, talent and consents made through the services
  the API's routes call: a second catalog of the same size, every record new (another seed).
  Beside it `bare_second`, the same rows copied into the bare database after the first
  catalog's, so both figures write into tables of the same size.

`rows_per_second` counts the file's records. Run: `python -m bench.import_bench` (JSON on
stdout); `BENCH_IMPORT_TITLES` sets the size (default 100,000 titles, ~2.1M records),
`BENCH_DATABASE_URL` the PostgreSQL server (default the local one), `BENCH_IMPORT_DATABASES`
which databases to run (comma-separated among `sqlite`, `postgresql`; default both).
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TITLES = int(os.environ.get("BENCH_IMPORT_TITLES", "100000"))
PG_ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
GOALS: dict[str, Any] = {
    "sqlite": {"rows_per_second": 25_000},
    # Each import (first and second) beside the bare COPY of its own rows.
    "postgresql": {"rows_per_second": 50_000, "ratio_to_bare": 0.5},
    # The second import's rows/s beside the first's (issue 16: a studio's next import).
    "second_to_first": 0.9,
    "peak_rss_mb": 300,
}
DATABASES = frozenset(
    name.strip()
    for name in os.environ.get("BENCH_IMPORT_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
)
SEED = 2024
# The second catalog: other external ids throughout (they all start with the seed).
SECOND_SEED = 2025
# Titles made through the services before the second import, each with a ready video and a
# grant, and as many talent, each with a consent.
API_TITLES = 10
_BATCH = 5000


def run(workdir: Path, *, titles: int = DEFAULT_TITLES) -> dict[str, Any]:
    """Generate two catalogs of `titles` titles, import them on each database; the figures."""
    started = time.perf_counter()
    first = _catalog(workdir, "first", titles, SEED)
    second = _catalog(workdir, "second", titles, SECOND_SEED)
    results: dict[str, Any] = {
        "titles": titles,
        "records": first.records,
        "file_mb": round(first.path.stat().st_size / 2**20, 1),
        "second_records": second.records,
        "generate_seconds": round(time.perf_counter() - started, 2),
        "goals": GOALS,
        "rows_written": first.table_rows,
        "second_rows_written": second.table_rows,
    }
    if "sqlite" in DATABASES:
        results["sqlite"] = _bench_sqlite(workdir, first, second)
    if "postgresql" in DATABASES:
        results["postgresql"] = _bench_postgres(first, second)
    return results


@dataclass(frozen=True, slots=True)
class _Catalog:
    """A generated catalog file, and the rows it makes spilled for the bare baseline."""

    path: Path
    records: int
    bare_rows: Path
    table_rows: dict[str, int]


def _catalog(workdir: Path, name: str, titles: int, seed: int) -> _Catalog:
    from catalog.imports.generate import generate_catalog, write_jsonl

    path = workdir / f"catalog-{name}-{titles}.jsonl"
    with path.open("w", encoding="utf-8") as out:
        records = write_jsonl(generate_catalog(titles, seed), out)
    bare_rows = workdir / f"bare-{name}"
    bare_rows.mkdir(exist_ok=True)
    table_rows = _spill_bare_rows(path, bare_rows)
    return _Catalog(path, records, bare_rows, dict(sorted(table_rows.items())))


# --- the two databases ------------------------------------------------------------------------


def _bench_sqlite(workdir: Path, first: _Catalog, second: _Catalog) -> dict[str, Any]:
    bare_url = f"sqlite:///{workdir / 'bare.db'}"
    import_url = f"sqlite:///{workdir / 'import.db'}"
    figures = _bench(bare_url, import_url, first, second)
    figures["bare_method"] = "executemany in batches of 5000, one transaction"
    goal = GOALS["sqlite"]["rows_per_second"]
    figures["meets_goal"] = (
        figures["import"]["rows_per_second"] >= goal
        and figures["second_to_first"] >= GOALS["second_to_first"]
        and _memory_ok(figures)
    )
    return figures


def _bench_postgres(first: _Catalog, second: _Catalog) -> dict[str, Any]:
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any refusal: no PostgreSQL here
        admin.dispose()
        return {"skipped": f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"}
    names = [f"clearcut_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        bare_url, import_url = (
            make_url(PG_ADMIN_URL).set(database=n).render_as_string(hide_password=False)
            for n in names
        )
        figures = _bench(bare_url, import_url, first, second)
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    figures["bare_method"] = "one COPY per table, one transaction"
    goals = GOALS["postgresql"]
    figures["meets_goal"] = (
        figures["import"]["rows_per_second"] >= goals["rows_per_second"]
        and figures["ratio_to_bare"] >= goals["ratio_to_bare"]
        and figures["second_ratio_to_bare"] >= goals["ratio_to_bare"]
        and figures["second_to_first"] >= GOALS["second_to_first"]
        and _memory_ok(figures)
    )
    return figures


def _memory_ok(figures: dict[str, Any]) -> bool:
    return all(
        figures[name]["peak_rss_mb"] < GOALS["peak_rss_mb"] for name in ("import", "second_import")
    )


def _bench(bare_url: str, import_url: str, first: _Catalog, second: _Catalog) -> dict[str, Any]:
    from marketplace import migrations

    migrations.upgrade(bare_url)
    bare = _bare_figures(_write_bare(bare_url, first.bare_rows), first.records)
    # The second catalog's rows into the same tables, now holding the first's.
    bare_second = _bare_figures(
        _write_bare(bare_url, second.bare_rows, new_studio=False), second.records
    )
    migrations.upgrade(import_url)
    imported = _import_in_child(import_url, first.path)
    studio_id = imported["studio_id"]
    again = _import_in_child(import_url, first.path, studio_id=studio_id)
    _add_through_services(import_url, studio_id)
    next_one = _import_in_child(import_url, second.path, studio_id=studio_id)
    speed = imported["figures"]["rows_per_second"]
    second_speed = next_one["figures"]["rows_per_second"]
    return {
        "bare": bare,
        "import": imported["figures"],
        "reimport_unchanged": again["figures"],
        "ratio_to_bare": round(speed / bare["rows_per_second"], 3),
        "bare_second": bare_second,
        "second_import": next_one["figures"],
        "second_ratio_to_bare": round(second_speed / bare_second["rows_per_second"], 3),
        "second_to_first": round(second_speed / speed, 3),
    }


def _bare_figures(seconds: float, records: int) -> dict[str, Any]:
    return {"seconds": round(seconds, 2), "rows_per_second": round(records / seconds)}


def _add_through_services(url: str, studio_id: str) -> None:
    """Give the studio titles, ready videos, grants, talent and consents as the API makes them.

    Through the services the API's routes call, as a studio member: the catalog the studio's
    next import finds holds records of every type made outside any import.
    """
    from catalog.assets import complete_asset, register_asset
    from catalog.rights import create_grant
    from catalog.talent import add_consent, create_talent
    from catalog.titles import create_title
    from marketplace.accounts.models import User
    from marketplace.accounts.principal import Principal
    from marketplace.core.db import make_engine, make_session_factory
    from marketplace.core.storage.fake import InMemoryStorage

    engine = make_engine(url)
    storage = InMemoryStorage("bench")
    window = {"start": date(2026, 1, 1), "end": date(2030, 12, 31)}
    with make_session_factory(engine)() as session, session.begin():
        user = User(organization_id=studio_id, email="owner@bench.example", role="owner")
        session.add(user)
        session.flush()
        member = Principal(user_id=user.id, organization_id=studio_id, kind="studio", role="owner")
        for n in range(API_TITLES):
            title = create_title(
                session, member, external_id=f"api-t{n}", kind="film", name=f"Made {n}"
            )
            body = f"master {n}".encode()
            video = register_asset(
                session, member, title.id, kind="video", byte_size=len(body),
                sha256=hashlib.sha256(body).hexdigest(), external_id=f"api-a{n}",
                duration_seconds=5400.0, width=1920, height=1080,
            )  # fmt: skip
            storage.put_bytes(video.storage_key, body)
            complete_asset(session, member, video.id, storage=storage)
            create_grant(
                session, member, title.id, territories=["US", "GB"],
                permitted_uses=["train", "evaluate"], external_id=f"api-r{n}", **window,
            )  # fmt: skip
            person = create_talent(session, member, name=f"Person {n}", external_id=f"api-p{n}")
            add_consent(
                session, member, person.id, attributes=["voice"], permitted_uses=["train"],
                territories=["US"], external_id=f"api-c{n}", **window,
            )  # fmt: skip
    engine.dispose()


# --- the import, in a child process -----------------------------------------------------------


def _import_in_child(url: str, catalog: Path, studio_id: str | None = None) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.import_bench", "--child", url, str(catalog)]
    if studio_id:
        command.append(studio_id)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"import child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _child(url: str, catalog: Path, studio_id: str | None) -> None:
    from marketplace.accounts.models import Organization
    from marketplace.core.db import make_engine, make_session_factory

    engine = make_engine(url)
    factory = make_session_factory(engine)
    from catalog.imports.service import import_catalog

    if studio_id is None:
        with factory() as session, session.begin():
            org = Organization(name="Bench Pictures", kind="studio")
            session.add(org)
            session.flush()
            studio_id = org.id
    ready_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with factory() as session, session.begin(), catalog.open("rb") as stream:
        job = import_catalog(session, None, stream, studio_id=studio_id, filename=catalog.name)
        status, rows = job.status, job.rows_total
        results = job.summary["results"]
    seconds = time.perf_counter() - started  # the commit included
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.dispose()
    if status != "succeeded":
        raise SystemExit(f"import failed: {job.errors[:5]}")
    figures = {
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "rss_before_import_mb": round(ready_kb / 1024, 1),
        # Summed over record types: a first import creates all, a re-import finds all unchanged.
        "records": {
            outcome: sum(counts[outcome] for counts in results.values())
            for outcome in ("created", "updated", "unchanged")
        },
    }
    print(json.dumps({"studio_id": studio_id, "figures": figures}))


# --- the bare baseline ------------------------------------------------------------------------


def _spill_bare_rows(catalog: Path, directory: Path) -> dict[str, int]:
    """Build the rows the import writes, with nothing checked, into per-table spills."""
    from catalog.assets import sanitize_filename, storage_key_for
    from catalog.imports.write import json_text as _json
    from marketplace.core.ids import new_id

    studio = "org_bench"  # replaced by the real studio id when written
    titles: dict[str, tuple[str, str | None]] = {}
    talent: dict[str, str] = {}
    spills = {name: _Spill(directory / f"{name}.rows") for name in _TABLES}
    with catalog.open("rb") as lines:
        for line in lines:
            r = json.loads(line)
            kind = r["type"]
            if kind == "title":
                title_id = new_id("ttl")
                parent = r.get("parent_external_id")
                root = None
                if parent is not None:
                    parent_id, parent_root = titles[parent]
                    root = parent_root or parent_id
                titles[r["external_id"]] = (title_id, root)
                genres = r.get("genres", [])
                spills["titles"].add(
                    (
                        title_id,
                        studio,
                        r["external_id"],
                        r.get("eidr_id"),
                        r["kind"],
                        titles[parent][0] if parent else None,
                        root,
                        r["name"],
                        r.get("original_language"),
                        _json(genres),
                        r.get("release_year"),
                        r.get("synopsis"),
                        r.get("visibility", "private"),
                        0.0,
                        0.0,
                        None,
                    )  # fmt: skip
                )
                for genre in genres:
                    spills["title_genres"].add((title_id, genre))
            elif kind == "asset":
                asset_id = new_id("ast")
                title_id = titles[r["title_external_id"]][0]
                name = sanitize_filename(r["storage_key"])
                spills["assets"].add(
                    (
                        asset_id,
                        title_id,
                        studio,
                        r["external_id"],
                        r["kind"],
                        storage_key_for(studio, title_id, asset_id, name),
                        r["byte_size"],
                        r["sha256"],
                        r.get("duration_seconds"),
                        r.get("width"),
                        r.get("height"),
                        r.get("fps"),
                        r.get("codec"),
                        r.get("language"),
                        "pending",
                    )  # fmt: skip
                )
            elif kind == "rights":
                grant_id = new_id("rgt")
                title_id = titles[r["title_external_id"]][0]
                territories, uses = sorted(r["territories"]), r["permitted_uses"]
                spills["rights_grants"].add(
                    (
                        grant_id,
                        title_id,
                        studio,
                        r["external_id"],
                        _json(territories),
                        r["start"],
                        r["end"],
                        _json(uses),
                        r.get("exclusive_available", False),
                    )  # fmt: skip
                )
                for territory in territories:
                    for use in uses:
                        spills["rights_terms"].add((grant_id, territory, use, title_id))
            elif kind == "talent":
                talent[r["external_id"]] = talent_id = new_id("tal")
                spills["talent"].add(
                    (
                        talent_id,
                        studio,
                        r["external_id"],
                        r["name"],
                        _json(r.get("external_ids", {})),
                    )
                )
            elif kind == "credit":
                spills["credits"].add(
                    (
                        new_id("crd"),
                        titles[r["title_external_id"]][0],
                        talent[r["talent_external_id"]],
                        r["role"],
                    )  # fmt: skip
                )
            elif kind == "consent":
                spills["consents"].add(
                    (
                        new_id("cns"),
                        talent[r["talent_external_id"]],
                        studio,
                        r["external_id"],
                        _json(r["attributes"]),
                        _json(r["permitted_uses"]),
                        _json(sorted(r["territories"])),
                        r["start"],
                        r["end"],
                    )  # fmt: skip
                )
    for spill in spills.values():
        spill.close()
    return {name: spill.count for name, spill in spills.items()}


class _Spill:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._out = path.open("wb")
        self._buffer: list[tuple[Any, ...]] = []

    def add(self, row: tuple[Any, ...]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            blob = marshal.dumps(self._buffer)
            self._out.write(len(blob).to_bytes(8, "little") + blob)
            self.count += len(self._buffer)
            self._buffer = []

    def close(self) -> None:
        self._flush()
        self._out.close()


def _batches(path: Path) -> Iterator[list[tuple[Any, ...]]]:
    with path.open("rb") as spilled:
        while size := int.from_bytes(spilled.read(8), "little"):
            yield marshal.loads(spilled.read(size))  # noqa: S302 - written by this process


# Table → columns in the spilled rows; `created_at`/`updated_at` are appended when written.
_TABLES: dict[str, tuple[str, ...]] = {
    "talent": ("id", "studio_id", "external_id", "name", "external_ids"),
    "titles": (
        "id", "studio_id", "external_id", "eidr_id", "kind", "parent_id", "root_id", "name",
        "original_language", "genres", "release_year", "synopsis", "visibility", "own_seconds",
        "content_seconds", "max_height",
    ),
    "title_genres": ("title_id", "genre"),
    "assets": (
        "id", "title_id", "studio_id", "external_id", "kind", "storage_key", "byte_size",
        "sha256", "duration_seconds", "width", "height", "fps", "codec", "language", "status",
    ),
    "rights_grants": (
        "id", "title_id", "studio_id", "external_id", "territories", "start", "end",
        "permitted_uses", "exclusive_available",
    ),
    "rights_terms": ("grant_id", "territory", "use", "title_id"),
    "consents": (
        "id", "talent_id", "studio_id", "external_id", "attributes", "permitted_uses",
        "territories", "start", "end",
    ),
    "credits": ("id", "title_id", "talent_id", "role"),
}  # fmt: skip
_STAMPS = {"titles": ("created_at", "updated_at"), "title_genres": (), "rights_terms": ()}


def _write_bare(url: str, directory: Path, *, new_studio: bool = True) -> float:
    """Write the spilled rows into a migrated database; return the seconds taken.

    `new_studio`: create the studio first (the database is empty); else it is there already.
    """
    from sqlalchemy import insert

    from marketplace.accounts.models import Organization
    from marketplace.core.db import make_engine

    engine = make_engine(url)
    now = datetime.now(UTC)
    if new_studio:
        with engine.begin() as conn:
            conn.execute(insert(Organization).values(id="org_bench", name="Bench", kind="studio"))
    postgres = engine.dialect.name == "postgresql"
    stamp: Any = now if postgres else now.strftime("%Y-%m-%d %H:%M:%S.%f")
    started = time.perf_counter()
    with engine.begin() as conn:
        dbapi: Any = conn.connection.dbapi_connection
        for table, columns in _TABLES.items():
            stamps = _STAMPS.get(table, ("created_at",))
            names = [*columns, *stamps]
            extra = (stamp,) * len(stamps)
            quoted = ", ".join(f'"{c}"' for c in names)
            if postgres:
                with (
                    dbapi.cursor() as cursor,
                    cursor.copy(
                        f"COPY {table} ({quoted}) FROM STDIN"  # table names are ours
                    ) as copy,
                ):
                    for batch in _batches(directory / f"{table}.rows"):
                        for row in batch:
                            copy.write_row(row + extra)
            else:
                marks = ", ".join("?" for _ in names)
                sql = f"INSERT INTO {table} ({quoted}) VALUES ({marks})"  # noqa: S608
                cursor = dbapi.cursor()
                for batch in _batches(directory / f"{table}.rows"):
                    cursor.executemany(sql, [row + extra for row in batch])
                cursor.close()
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], Path(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
        return
    with tempfile.TemporaryDirectory(prefix="clearcut-import-bench-") as tmp:
        results = run(Path(tmp))
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
