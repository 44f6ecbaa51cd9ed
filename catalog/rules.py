"""The catalog's cross-domain rules: checks and guards that other domains add to the catalog's
own, passed explicitly where they apply. The composition root (marketplace.bootstrap) builds
them once and files them in the runtime under CATALOG_RULES; nothing registers itself."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.clearance import ClearanceCheck
from catalog.titles import TitleDeletionGuard
from marketplace.core.runtime import Key


@dataclass(frozen=True)
class CatalogRules:
    """Clearance checks run after the catalog's own (`exclusivity_conflict`), and guards that
    may refuse a title's deletion (a contract in force)."""

    clearance_checks: tuple[ClearanceCheck, ...] = ()
    deletion_guards: tuple[TitleDeletionGuard, ...] = ()


CATALOG_RULES: Key[CatalogRules] = Key("the catalog's cross-domain rules")
