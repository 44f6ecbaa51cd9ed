"""Refusals specific to delivery."""

from __future__ import annotations

from marketplace.core.errors import DomainError


class QuotaExceeded(DomainError):
    """One more download, or this many more bytes, would pass the contract's quota."""

    status, code, title = 429, "quota_exceeded", "Quota exceeded"
