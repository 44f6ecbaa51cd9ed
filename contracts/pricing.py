"""Fair-price guidance: per-hour price quartiles of comparable signed contracts."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from catalog.models import Title, TitleGenre
from contracts.models import Contract, ContractTitle

MIN_CONTRACTS = 5
MIN_STUDIOS = 3


@dataclass(frozen=True)
class BenchmarkQuery:
    currency: str = "usd"
    genre: str | None = None
    permitted_use: str | None = None
    min_height: int | None = None
    territory: str | None = None


def price_benchmarks(session: Session, query: BenchmarkQuery) -> dict[str, Any]:
    """Quartiles of price per content hour, withheld below 5 contracts from 3 studios."""
    stmt = select(Contract).where(
        Contract.signed_at.is_not(None),
        Contract.currency == query.currency,
        Contract.content_seconds > 0,
    )
    if query.genre:
        stmt = stmt.where(
            exists().where(
                ContractTitle.contract_id == Contract.id,
                TitleGenre.title_id == ContractTitle.title_id,
                TitleGenre.genre == query.genre,
            )
        )
    if query.min_height:
        stmt = stmt.where(
            exists().where(
                ContractTitle.contract_id == Contract.id,
                Title.id == ContractTitle.title_id,
                Title.max_height >= query.min_height,
            )
        )
    per_hour: list[float] = []
    studios: set[str] = set()
    for contract in session.scalars(stmt):
        if query.permitted_use and query.permitted_use not in contract.uses:
            continue
        if query.territory and not (
            query.territory in contract.territories or "WW" in contract.territories
        ):
            continue
        per_hour.append(contract.amount_cents / (contract.content_seconds / 3600.0))
        studios.add(contract.studio_id)
    if len(per_hour) < MIN_CONTRACTS or len(studios) < MIN_STUDIOS:
        # Too few deals: any figure could be read back to one studio's price.
        return {"currency": query.currency, "insufficient_data": True}
    q1, median, q3 = statistics.quantiles(per_hour, n=4, method="inclusive")
    return {
        "currency": query.currency,
        "sample_contracts": len(per_hour),
        "sample_studios": len(studios),
        "per_hour_cents": {"p25": round(q1), "median": round(median), "p75": round(q3)},
    }
