"""The audit log (docs/audit.md), on PostgreSQL, each figure beside its same-run baseline.

- `append`: audited writes from BENCH_CLIENTS threads, one event per transaction, with no
  shared lock (the code as it is) beside the same writes each first locking the old chain head
  row `FOR UPDATE` (what every audited write did before migration 0022) and a bare INSERT of
  the same row with no audit code.
- `sealing`: events appended at 1,000/s for BENCH_SEAL_SECONDS (default 20) while a sealer
  runs every 2 seconds, as the job does: the longest any event waited unsealed.
- `verify`: `verify_log` over the sealed events, beside (a) reading the same rows, building
  their canonical bytes and hashing them with hashlib (the old chain check's work), and
  (b) hashlib alone over those bytes already built.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
DURATION = float(os.environ.get("BENCH_SECONDS", "5"))
SEAL_SECONDS = float(os.environ.get("BENCH_SEAL_SECONDS", "20"))
SEAL_RATE = 1000


def run() -> dict[str, Any]:
    from bench.servers import on_postgres

    return {"postgresql": on_postgres(_bench)}


def _bench(url: str) -> dict[str, Any]:
    from marketplace import migrations
    from marketplace.audit.keys import AuditKeys
    from marketplace.core.db import make_engine, make_session_factory

    migrations.upgrade(url)
    engine = make_engine(url, pool_size=CLIENTS + 4)
    factory = make_session_factory(engine)
    keys = AuditKeys.generate()
    try:
        result: dict[str, Any] = {"clients": CLIENTS}
        result["append"] = _append_section(factory)
        with factory() as s, s.begin():
            s.execute(text("DELETE FROM audit_event_parties"))
            s.execute(text("DELETE FROM audit_events"))
        result["sealing"] = _sealing_section(factory, keys)
        result["verify"] = _verify_section(factory, keys)
        return result
    finally:
        engine.dispose()


def _rate(factory: Any, write: Any) -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + DURATION

    def client(n: int) -> None:
        mine: list[float] = []
        i = 0
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            with factory() as s, s.begin():
                write(s, f"{n}-{i}")
            mine.append(time.perf_counter() - start)
            i += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "writes_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
    }


def _append_section(factory: Any) -> dict[str, Any]:
    from marketplace.audit.service import record_event
    from marketplace.core.ids import new_id

    def audited(s: Any, tag: str) -> None:
        record_event(
            s, None, "bench.write", object_id=None, organization_id="org_a", data={"t": tag}
        )

    def old_lock(s: Any, tag: str) -> None:
        s.execute(text("SELECT seq FROM audit_chain_head WHERE id = 1 FOR UPDATE"))
        audited(s, tag)

    def bare(s: Any, tag: str) -> None:
        s.execute(
            text(
                "INSERT INTO audit_events (id, at, organization_id, action, data, salt) "
                "VALUES (:id, now(), 'org_a', 'bench.bare', CAST(:data AS JSON), :salt)"
            ),
            {"id": new_id("evt"), "data": f'{{"t": "{tag}"}}', "salt": "0" * 32},
        )

    figures = {
        "baseline_bare_insert": _rate(factory, bare),
        "record_event_no_shared_lock": _rate(factory, audited),
        "record_event_with_old_head_lock": _rate(factory, old_lock),
    }
    base = figures["baseline_bare_insert"]["writes_per_second"]
    for name in ("record_event_no_shared_lock", "record_event_with_old_head_lock"):
        figures[name]["ratio_to_bare_insert"] = round(figures[name]["writes_per_second"] / base, 3)
    return figures


def _sealing_section(factory: Any, keys: Any) -> dict[str, Any]:
    from marketplace.audit.models import AuditEvent
    from marketplace.audit.sealing import seal_pending
    from marketplace.audit.service import record_event

    stop = threading.Event()
    appenders = 4
    counts = [0] * appenders
    worst = [0.0]
    runs: list[float] = []

    def appender(n: int) -> None:
        # Its share of 1,000 events/s, in transactions of up to 10, paced by the clock.
        started = time.perf_counter()
        while time.perf_counter() - started < SEAL_SECONDS:
            due = int((time.perf_counter() - started) * SEAL_RATE / appenders)
            while counts[n] < due:
                with factory() as s, s.begin():
                    for _ in range(min(10, due - counts[n])):
                        record_event(s, None, "bench.seal", object_id=None, organization_id="o")
                        counts[n] += 1
            time.sleep(0.005)

    def sealer() -> None:
        while True:
            done = stop.is_set()
            begun = time.perf_counter()
            with factory() as s, s.begin():
                now = datetime.now(UTC)
                oldest = s.scalar(
                    select(AuditEvent.at).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id)
                )
                seal_pending(s, keys, now=now)
            if oldest is not None:
                worst[0] = max(worst[0], (datetime.now(UTC) - oldest).total_seconds())
            runs.append(time.perf_counter() - begun)
            if done:
                return
            time.sleep(max(0.0, 2.0 - (time.perf_counter() - begun)))

    threads = [threading.Thread(target=appender, args=(n,)) for n in range(appenders)]
    seal_thread = threading.Thread(target=sealer)
    started = time.perf_counter()
    seal_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    stop.set()
    seal_thread.join()
    appended = [sum(counts)]
    return {
        "target_events_per_second": SEAL_RATE,
        "appended": appended[0],
        "achieved_events_per_second": round(appended[0] / elapsed, 1),
        "longest_wait_unsealed_seconds": round(worst[0], 2),
        "goal_seconds": 5,
        "seal_runs": len(runs),
        "longest_seal_run_seconds": round(max(runs), 3) if runs else None,
    }


def _verify_section(factory: Any, keys: Any) -> dict[str, Any]:
    from marketplace.audit.models import AuditEvent
    from marketplace.audit.sealing import _EVENT_COLUMNS, _event_bytes, verify_log

    with factory() as s:
        started = time.perf_counter()
        report = verify_log(s, keys)
        verify_s = time.perf_counter() - started
        assert report.ok, report.reason
        # (a) read the same rows (and their parties), canonicalize, hash.
        started = time.perf_counter()
        built: list[bytes] = []
        last = 0
        while True:
            rows = s.execute(
                select(*_EVENT_COLUMNS)
                .where(AuditEvent.seq > last)
                .order_by(AuditEvent.seq)
                .limit(5000)
            ).all()
            if not rows:
                break
            parties = dict(
                s.execute(
                    text(
                        "SELECT p.event_id, p.organization_id FROM audit_event_parties p "
                        "JOIN audit_events e ON e.id = p.event_id "
                        "WHERE e.seq > :a AND e.seq <= :b"
                    ),
                    {"a": last, "b": rows[-1].seq},
                ).all()
            )
            for row in rows:
                data = _event_bytes(row, row.seq, row.prev_hash, [parties.get(row.id, "")])
                hashlib.sha256(data).hexdigest()
                built.append(data)
            last = rows[-1].seq
        read_hash_s = time.perf_counter() - started
        # (b) hashlib alone over the bytes already built.
        started = time.perf_counter()
        for data in built:
            hashlib.sha256(data).hexdigest()
        hash_only_s = time.perf_counter() - started
    n = report.checked
    return {
        "events": n,
        "verify_events_per_second": round(n / verify_s),
        "baseline_read_canonicalize_hash_per_second": round(n / read_hash_s),
        "baseline_hashlib_alone_per_second": round(n / hash_only_s),
        "ratio_to_read_canonicalize_hash": round(read_hash_s / verify_s, 3),
        "ratio_to_hashlib_alone": round(hash_only_s / verify_s, 4),
    }
