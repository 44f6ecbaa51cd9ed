"""Refusals specific to billing."""

from __future__ import annotations

from marketplace.core.errors import DomainError


class PaymentProviderError(DomainError):
    """Stripe could not be reached or refused the call; nothing was stored, retry later."""

    status, code, title = 502, "payment_provider_error", "Payment provider error"
