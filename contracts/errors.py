"""Refusals specific to contracts."""

from __future__ import annotations

from marketplace.core.errors import Conflict, DomainError


class ExclusivityConflict(DomainError):
    status, code, title = 409, "exclusivity_conflict", "Exclusivity conflict"


class DocumentMismatch(Conflict):
    title = "Document hash mismatch"
