"""Bulk import throughput: `import_catalog` against a bare COPY / executemany of the same rows.

For each database (a SQLite file; a fresh PostgreSQL database when one answers), in one run:
- `bare`: the rows the import writes (titles, genres, assets, grants, terms, talent, credits,
  consents), built beforehand, then written with nothing else: one COPY per table on PostgreSQL,
  executemany in batches on SQLite; the floor any importer stands on.
- `import`: the import service on the generated JSON Lines file, in a child process (the CLI's
  path, without the progress bar), for its time and its peak resident memory (`ru_maxrss`);
  `reimport`: the same file again, when every record is found unchanged.

`rows_per_second` counts the file's records. Run: `python -m bench.import_bench` (JSON on
stdout); `BENCH_IMPORT_TITLES` sets the size (default 100,000 titles, ~2.1M records),
`BENCH_DATABASE_URL` the PostgreSQL server (default the local one), `BENCH_IMPORT_DATABASES`
which databases to run (comma-separated among `sqlite`, `postgresql`; default both).
"""

from __future__ import annotations

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TITLES = int(os.environ.get("BENCH_IMPORT_TITLES", "100000"))
PG_ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
GOALS: dict[str, Any] = {
    "sqlite": {"rows_per_second": 25_000},
    "postgresql": {"rows_per_second": 50_000, "ratio_to_bare": 0.25},
    "peak_rss_mb": 300,
}
DATABASES = frozenset(
    name.strip()
    for name in os.environ.get("BENCH_IMPORT_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
)
SEED = 2024
_BATCH = 5000


def run(workdir: Path, *, titles: int = DEFAULT_TITLES) -> dict[str, Any]:
    """Generate a catalog of `titles` titles, import it on each database; return the figures."""
    from catalog.imports.generate import generate_catalog, write_jsonl

    catalog = workdir / f"catalog-{titles}.jsonl"
    started = time.perf_counter()
    with catalog.open("w", encoding="utf-8") as out:
        records = write_jsonl(generate_catalog(titles, SEED), out)
    results: dict[str, Any] = {
        "titles": titles,
        "records": records,
        "file_mb": round(catalog.stat().st_size / 2**20, 1),
        "generate_seconds": round(time.perf_counter() - started, 2),
        "goals": GOALS,
    }
    bare_rows = workdir / "bare"
    bare_rows.mkdir(exist_ok=True)
    table_rows = _spill_bare_rows(catalog, bare_rows)
    results["rows_written"] = dict(sorted(table_rows.items()))
    if "sqlite" in DATABASES:
        results["sqlite"] = _bench_sqlite(workdir, catalog, bare_rows, records)
    if "postgresql" in DATABASES:
        results["postgresql"] = _bench_postgres(catalog, bare_rows, records)
    return results


# --- the two databases ------------------------------------------------------------------------


def _bench_sqlite(workdir: Path, catalog: Path, bare_rows: Path, records: int) -> dict[str, Any]:
    bare_url = f"sqlite:///{workdir / 'bare.db'}"
    import_url = f"sqlite:///{workdir / 'import.db'}"
    figures = _bench(bare_url, import_url, catalog, bare_rows, records)
    figures["bare_method"] = "executemany in batches of 5000, one transaction"
    goal = GOALS["sqlite"]["rows_per_second"]
    figures["meets_goal"] = figures["import"]["rows_per_second"] >= goal and _memory_ok(figures)
    return figures


def _bench_postgres(catalog: Path, bare_rows: Path, records: int) -> dict[str, Any]:
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
        figures = _bench(bare_url, import_url, catalog, bare_rows, records)
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    figures["bare_method"] = "one COPY per table, one transaction"
    goals = GOALS["postgresql"]
    figures["meets_goal"] = (
        figures["import"]["rows_per_second"] >= goals["rows_per_second"]
        and (figures["ratio_to_bare"] or 0) >= goals["ratio_to_bare"]
        and _memory_ok(figures)
    )
    return figures


def _memory_ok(figures: dict[str, Any]) -> bool:
    return bool(figures["import"]["peak_rss_mb"] < GOALS["peak_rss_mb"])


def _bench(
    bare_url: str, import_url: str, catalog: Path, bare_rows: Path, records: int
) -> dict[str, Any]:
    from marketplace import migrations

    migrations.upgrade(bare_url)
    bare_seconds = _write_bare(bare_url, bare_rows)
    migrations.upgrade(import_url)
    first = _import_in_child(import_url, catalog)
    again = _import_in_child(import_url, catalog, studio_id=first["studio_id"])
    bare = {"seconds": round(bare_seconds, 2), "rows_per_second": round(records / bare_seconds)}
    return {
        "bare": bare,
        "import": first["figures"],
        "reimport_unchanged": again["figures"],
        "ratio_to_bare": round(first["figures"]["rows_per_second"] / bare["rows_per_second"], 3),
    }


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


def _write_bare(url: str, directory: Path) -> float:
    """Write the spilled rows into a migrated, empty database; return the seconds taken."""
    from sqlalchemy import insert

    from marketplace.accounts.models import Organization
    from marketplace.core.db import make_engine

    engine = make_engine(url)
    now = datetime.now(UTC)
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
