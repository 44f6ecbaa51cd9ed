"""Prefixed, time-ordered ids: one at a time and in bulk."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from marketplace.core.ids import IdPool, has_prefix, new_id, new_ids


class TestBulkIds:
    def test_ids_minted_in_bulk_are_those_new_id_makes(self, monkeypatch: Any) -> None:
        monkeypatch.setattr(time, "time", lambda: 1_767_225_600.123)
        one = new_id("ast")
        many = new_ids("ast", 500)
        assert all(
            has_prefix(i, "ast") and re.fullmatch(r"ast_[0-9a-hjkmnp-tv-z]{26}", i) for i in many
        )
        # The same milliseconds, then 80 random bits.
        assert {i[:14] for i in many} == {one[:14]}
        assert len(set(many)) == 500
        pool = IdPool(size=3)
        drawn = [pool("ttl") for _ in range(7)]
        assert len(set(drawn)) == 7 and all(has_prefix(i, "ttl") for i in drawn)
        with pytest.raises(ValueError, match="unknown id prefix"):
            new_ids("nope", 1)

    def test_ids_minted_in_bulk_come_in_increasing_order(self) -> None:
        # Rows written in the order of their ids go to the end of each index on id.
        many = new_ids("crd", 2000)
        assert many == sorted(many) and len(set(many)) == 2000
        pool = IdPool(size=50)
        drawn = [pool("ast") for _ in range(120)]
        # Each mint in order (two mints within one millisecond may interleave).
        for start in (0, 50, 100):
            assert drawn[start : start + 50] == sorted(drawn[start : start + 50])
