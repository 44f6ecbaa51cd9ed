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
