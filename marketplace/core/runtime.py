"""The runtime: what every entry point (the web app, the CLI, a worker) works with, built once
from Settings by `marketplace.bootstrap.build_runtime`, never by a side effect of an import.

It holds the session factories, the object store, the clock, the cursor codec, and the domain
components (a payment gateway, the catalog's cross-domain rules) under typed keys: the kernel
knows none of the domains, and a domain finds its component by the key it declares itself.
Work is done in units of work that commit once; services only flush.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Engine, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from config import Settings
from marketplace.core.db import utcnow
from marketplace.core.jobs import JobQueue, pending_dispatch
from marketplace.core.pagination import CursorCodec
from marketplace.core.storage import ObjectStorage

log = logging.getLogger("marketplace.runtime")
T = TypeVar("T")
Clock = Callable[[], datetime]


class Key(Generic[T]):
    """A typed name for a domain component held by the runtime (`PAYMENTS: Key[PaymentGateway]`).

    Declared by the domain that uses the component; filled by the composition root."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Key({self.name!r})"


class MissingComponent(LookupError):
    """The runtime was built without a component a caller needs: a wiring bug."""


class ReadOnlyViolation(RuntimeError):
    """A read-only unit of work tried to write: a bug in its caller, never a client's fault."""


# session.info flag: this session refuses to write (read-only units of work).
WRITES_REFUSED = "clearcut_writes_refused"


def _refuse_flush(session: Session, flush_context: Any, instances: Any) -> None:
    if session.info.get(WRITES_REFUSED) and (session.new or session.dirty or session.deleted):
        raise ReadOnlyViolation("a read-only unit of work tried to write (flush)")


def _refuse_dml(execute_state: ORMExecuteState) -> None:
    if execute_state.session.info.get(WRITES_REFUSED) and (
        execute_state.is_insert or execute_state.is_update or execute_state.is_delete
    ):
        raise ReadOnlyViolation(
            "a read-only unit of work tried to write (INSERT, UPDATE or DELETE)"
        )


def guard_read_only(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Have the factory's sessions refuse writes once marked read-only (`refuse_writes`).

    Listeners on this factory alone, not on the Session class: another runtime in the same
    process (a test's, a worker's) is not affected."""
    if not event.contains(factory, "before_flush", _refuse_flush):
        event.listen(factory, "before_flush", _refuse_flush)
        event.listen(factory, "do_orm_execute", _refuse_dml)
    return factory


def refuse_writes(session: Session) -> None:
    session.info[WRITES_REFUSED] = True


class UnitOfWork:
    """One transaction: `with runtime.unit_of_work() as uow:` commits once when the block ends,
    rolls back if it raises, and closes the session either way.

    The web request drives the same object by hand (commit or rollback, then close), since it
    decides at the response whether to commit."""

    def __init__(
        self, session: Session, *, read_only: bool = False, queue: JobQueue | None = None
    ) -> None:
        self.session = session
        self.read_only = read_only
        self.queue = queue
        self._ended = False

    def refuse_writes(self) -> None:
        """From now on the session refuses to write (entering a read-only unit does this; the
        web request does it once the caller is authenticated, whose key's last-used mark is a
        write of its own)."""
        refuse_writes(self.session)

    def commit(self) -> None:
        """Commit, then hand the jobs this work enqueued to the queue (the outbox's relay: a
        job is queued only once the change that asked for it is durable; a hand-off lost here
        is made again by the sweep)."""
        self._ended = True
        self.session.commit()
        jobs = pending_dispatch(self.session)
        if self.queue is None:
            return
        for job_id, delay in jobs:
            try:
                self.queue.dispatch(job_id, delay_seconds=delay)
            except Exception:  # the queue is down: the sweep hands the job over later
                log.warning("job %s not handed to the queue; the sweep will", job_id, exc_info=True)

    def rollback(self) -> None:
        self._ended = True
        self.session.rollback()
        pending_dispatch(self.session)  # those jobs were never written

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> UnitOfWork:
        if self.read_only:
            self.refuse_writes()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is not None:
                self.rollback()
            elif not self._ended:
                self.commit()
        finally:
            self.close()


@dataclass(frozen=True)
class Runtime:
    """Settings, sessions, adapters, clock and rules: one object per process, passed on."""

    settings: Settings
    session_factory: sessionmaker[Session]
    storage: ObjectStorage
    cursors: CursorCodec
    components: Mapping[Key[Any], object] = field(default_factory=dict)
    # Sessions for work that only reads (db.read_only_engine); the session factory when None
    # (tests bind every session to one connection).
    read_session_factory: sessionmaker[Session] | None = None
    clock: Clock = utcnow
    engine: Engine | None = None  # owned by this runtime: disposed with it
    # Where jobs go after their unit of work commits (huey; None: nowhere, the sweep of a
    # worker picks them up).
    queue: JobQueue | None = None

    def __post_init__(self) -> None:
        guard_read_only(self.session_factory)
        if self.read_session_factory is not None:
            guard_read_only(self.read_session_factory)

    def get(self, key: Key[T]) -> T:
        """The component filed under `key`."""
        try:
            return cast(T, self.components[key])
        except KeyError:
            raise MissingComponent(f"the runtime was built without {key.name}") from None

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        """A new transaction; read-only ones take the read-only sessions and refuse writes."""
        factory = self.session_factory
        if read_only and self.read_session_factory is not None:
            factory = self.read_session_factory
        return UnitOfWork(factory(), read_only=read_only, queue=self.queue)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session for work that manages its own transactions (a streaming import)."""
        session = self.session_factory()
        try:
            yield session
        finally:
            session.close()

    def dispose(self) -> None:
        """Close the runtime's own connections (a CLI command's end, a test's)."""
        if self.engine is not None:
            self.engine.dispose()
