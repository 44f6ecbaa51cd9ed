"""The object store's cached health: one probe per interval, on a clock the test moves."""

from __future__ import annotations

import threading

from marketplace.core.health import StorageHealth
from marketplace.core.storage.fake import InMemoryStorage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStorage(InMemoryStorage):
    def __init__(self) -> None:
        super().__init__("health")
        self.pings = 0

    def ping(self) -> None:
        self.pings += 1
        super().ping()


def test_one_probe_answers_for_the_interval() -> None:
    storage, clock = CountingStorage(), Clock()
    health = StorageHealth(storage, interval=5.0, clock=clock)
    assert health.is_up() and storage.pings == 1
    storage.available = False
    clock.now += 4.9
    assert health.is_up() and storage.pings == 1  # the answer still stands
    clock.now += 0.1
    assert not health.is_up() and storage.pings == 2
    assert not health.is_up() and storage.pings == 2


def test_a_store_back_up_is_trusted_at_the_next_probe() -> None:
    storage, clock = CountingStorage(), Clock()
    storage.available = False
    health = StorageHealth(storage, interval=5.0, clock=clock)
    assert not health.is_up()
    storage.available = True
    assert not health.is_up()
    clock.now += 5.0
    assert health.is_up() and storage.pings == 2


def test_one_failed_ping_is_one_interval_down() -> None:
    storage, clock = CountingStorage(), Clock()
    storage.fail_next_ping = True
    health = StorageHealth(storage, interval=2.0, clock=clock)
    assert not health.is_up()
    clock.now += 2.0
    assert health.is_up()
    assert health.retry_after_seconds == 2


def test_while_one_probe_runs_others_use_the_last_answer() -> None:
    entered, release = threading.Event(), threading.Event()

    class SlowStorage(CountingStorage):
        def ping(self) -> None:
            if self.pings:  # the first probe is quick, the next one hangs
                entered.set()
                release.wait(5)
            super().ping()

    storage, clock = SlowStorage(), Clock()
    health = StorageHealth(storage, interval=5.0, clock=clock)
    assert health.is_up()
    clock.now += 5.0
    storage.available = False
    prober = threading.Thread(target=health.is_up)
    prober.start()
    assert entered.wait(5)
    assert health.is_up() and storage.pings == 1  # not waiting, not probing again
    release.set()
    prober.join(5)
    assert not health.is_up() and storage.pings == 2
