"""The `marketplace` command."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from marketplace.cli import main


@pytest.mark.committing
def test_bootstrap_operator_prints_a_working_key_last(
    committing_engine: Engine, database_url: str, monkeypatch: Any, settings: Any
) -> None:
    from sqlalchemy.orm import Session

    from marketplace.accounts.service import authenticate

    monkeypatch.setenv("DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["bootstrap-operator", "--email", "Boss@Ops.example"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    with Session(committing_engine) as session:
        principal = authenticate(session, key)
        assert principal is not None and principal.kind == "operator"
    # Running it again for the same operator issues another key, not another organization.
    again = CliRunner().invoke(main, ["bootstrap-operator", "--email", "boss@ops.example"])
    assert again.exit_code == 0
    assert again.output.strip().splitlines()[-1] != key
    with Session(committing_engine) as session:
        assert authenticate(session, key) is not None


def test_production_refuses_to_start_without_secrets(monkeypatch: Any) -> None:
    monkeypatch.setenv("MARKETPLACE_ENV", "production")
    for name in ("SECRET_KEY", "DATABASE_URL", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code != 0
    assert "refusing to start in production" in result.output


@pytest.mark.committing
def test_catalog_reindex(committing_engine: Engine, database_url: str, monkeypatch: Any) -> None:
    # What it rebuilds is checked in tests/catalog/test_search.py (TestIndexMaintenance).
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["catalog", "reindex"])
    assert result.exit_code == 0, result.output
    if committing_engine.dialect.name == "sqlite":
        assert result.output.startswith("full-text index rebuilt for ")
    else:
        assert "nothing to rebuild" in result.output
        assert "pending index pages merged" in result.output
