"""The principals of recently authenticated keys, held for a few seconds in one process.

A request's key lookup is a query (a round trip on PostgreSQL) that the same key answers the
same way until it is revoked. The cache answers it from memory instead, under these bounds:

- An entry is found by the SHA-256 of the whole key, never by its prefix: only the exact key
  that was checked against the database gets its principal back (a wrong secret with a right
  prefix misses and is refused by the database path). Principals of different keys, users and
  organizations never share an entry.
- Revoking a key in this process forgets it at once, and again when the revocation commits; a
  lookup that raced the revocation is not stored (`generation`).
- Another process (a second gunicorn worker, another host) keeps honouring a revoked key for
  at most `seconds` (AUTH_CACHE_SECONDS). The default is 0: no cache, and revocation is
  immediate everywhere, as API.md promises ("revoked at once"); a deployment may opt in to a
  few seconds' window for throughput.
- A key is stored only once its last_used_at is recent, so the one-minute last-used mark keeps
  being written (accounts.service.authenticate).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from marketplace.accounts.principal import Principal
from marketplace.core.runtime import Key

# Far more keys than one process sees in a few seconds; past it, the cache starts over.
MAX_ENTRIES = 10_000


class PrincipalCache:
    """Principal by key digest, each for `seconds`; thread-safe; `seconds <= 0` stores nothing."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        """Read before a lookup and passed to `put`: a revocation in between voids the put."""
        return self._generation

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, expires = entry
        if self._clock() >= expires:
            with self._lock:
                if self._entries.get(digest) is entry:
                    del self._entries[digest]
            return None
        return principal

    def put(self, digest: str, principal: Principal, generation: int) -> None:
        if self.seconds <= 0:
            return
        expires = self._clock() + self.seconds
        with self._lock:
            if generation != self._generation:
                return  # a key was revoked while this one was looked up
            if len(self._entries) >= MAX_ENTRIES:
                now = self._clock()
                self._entries = {d: e for d, e in self._entries.items() if e[1] > now}
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries = {}
            self._entries[digest] = (principal, expires)

    def forget_key(self, key_id: str) -> None:
        """Forget a key's principal (revoked) and void the lookups under way."""
        with self._lock:
            self._generation += 1
            self._entries = {d: e for d, e in self._entries.items() if e[0].key_id != key_id}

    def forget_key_on_commit(self, session: Session, key_id: str) -> None:
        """Forget the key now and once `session` commits (a lookup in between saw it valid)."""
        self.forget_key(key_id)
        event.listen(session, "after_commit", lambda _: self.forget_key(key_id), once=True)

    def __len__(self) -> int:
        return len(self._entries)


PRINCIPAL_CACHE: Key[PrincipalCache] = Key("principal_cache")
