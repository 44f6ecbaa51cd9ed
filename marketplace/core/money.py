"""Amounts of money: integers of the currency's minor unit, never more than one charge carries."""

from __future__ import annotations

from marketplace.core.errors import ValidationFailed

#: The most one Stripe charge can carry: eight digits of the minor unit (999,999.99 USD).
#: Stripe allows more in a few currencies (twelve digits in IDR); one bound for all is the
#: safe side, and no deal here comes near it.
MAX_CHARGE_MINOR_UNITS = 99_999_999

#: The most a BIGINT column holds: anything above is refused before it reaches the database.
MAX_STORED_MINOR_UNITS = 2**63 - 1

CHARGE_LIMIT_MESSAGE = (
    f"Must be at most {MAX_CHARGE_MINOR_UNITS:,} minor units (cents): "
    "the most one Stripe charge can carry."
)


def check_chargeable(amount: int, *, field: str, what: str = "the price") -> None:
    """Refuse (422, naming the limit) an amount one payment could not collect."""
    if amount > MAX_CHARGE_MINOR_UNITS:
        raise ValidationFailed(
            f"{what} is {amount:,} minor units; one payment carries at most "
            f"{MAX_CHARGE_MINOR_UNITS:,} (Stripe's limit)",
            errors={field: [CHARGE_LIMIT_MESSAGE]},
        )
