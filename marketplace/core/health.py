"""The object store's health, probed at most every few seconds and shared by whoever needs it.

`/readyz` reports it; the routes that hand out URLs for the store refuse (503) while it is
known to be down, since signing a URL never touches the store and would succeed regardless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from marketplace.core.storage import ObjectStorage, StorageUnavailable

log = logging.getLogger(__name__)

#: How long one probe's answer stands: a down store is noticed (and a recovered one trusted
#: again) within this many seconds, and the store sees at most one probe that often.
STORAGE_CHECK_INTERVAL_SECONDS = 5.0


class StorageHealth:
    """Whether the object store answered its last probe, at most `interval` seconds ago.

    A probe is the store's `ping()` (one signed HEAD of the bucket, ~2 s timeout). While one
    runs, other callers use the answer before it rather than wait or probe too; the first
    call of all probes. `clock` (monotonic seconds) lets tests move time instead of sleeping.
    """

    def __init__(
        self,
        storage: ObjectStorage,
        *,
        interval: float = STORAGE_CHECK_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage = storage
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._up = True
        self._checked_at: float | None = None
        self._probing = False

    @property
    def retry_after_seconds(self) -> int:
        """When asking again may find another answer."""
        return max(1, round(self.interval))

    def is_up(self) -> bool:
        """The last probe's answer, probing first when it is older than the interval."""
        with self._lock:
            fresh = (
                self._checked_at is not None and self._clock() - self._checked_at < self.interval
            )
            if fresh or (self._probing and self._checked_at is not None):
                return self._up
            self._probing = True
        up = False
        try:
            self.storage.ping()
            up = True
        except StorageUnavailable as exc:
            log.warning("object storage unavailable: %s", exc)
        finally:
            with self._lock:
                self._up, self._checked_at, self._probing = up, self._clock(), False
        return up
