"""The catalog's refusals, each with the stable `code` of API.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marketplace.core.errors import DomainError, InvalidState

if TYPE_CHECKING:
    from catalog.clearance import ClearanceResult


class UploadNotVerified(InvalidState):
    """`POST /assets/{id}/complete` found no object, or not the declared one; still pending."""

    title = "Upload not verified"


class StorageUnavailableError(DomainError):
    """The object store did not answer; nothing was changed, the client may retry."""

    status, code, title = 503, "storage_unavailable", "Object storage unavailable"

    def __init__(
        self, detail: str = "the object store is unavailable; retry later", *, retry_after: int = 5
    ) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class NotCleared(DomainError):
    """Some titles are not cleared for the requested uses, territories and term.

    `errors` maps each blocked title id to its reasons (`[{code, detail}]`), in request order.
    """

    status, code, title = 422, "not_cleared", "Not cleared"

    @classmethod
    def of(cls, result: ClearanceResult) -> NotCleared:
        """Build the refusal for every blocked title of a clearance result."""
        errors: dict[str, Any] = {
            blocked.title_id: [{"code": r.code, "detail": r.detail} for r in blocked.reasons]
            for blocked in result.blocked
        }
        names = ", ".join(errors)
        return cls(f"not cleared: {names}", errors=errors)
