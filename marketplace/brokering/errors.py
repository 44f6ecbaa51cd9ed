"""Refusals specific to brokering."""

from __future__ import annotations

from marketplace.core.errors import DomainError


class NotCleared(DomainError):
    status, code, title = 422, "not_cleared", "Titles not cleared"
