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


@pytest.mark.committing
@pytest.mark.servers
def test_catalog_verify_assets_reads_objects_back_from_the_store(
    committing_engine: Engine,
    committed_world: Any,
    database_url: str,
    monkeypatch: Any,
    s3_storage: Any,
    seaweedfs: Any,
) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from catalog.models import Asset
    from tests.catalog.factories import make_asset, make_title

    good, bad = b"as declared" * 1000, b"other bytes" * 1000
    with Session(committing_engine, expire_on_commit=False) as session:
        title = make_title(session, committed_world["studio_a"].org_id)
        ok = make_asset(session, title, data=good)
        wrong = make_asset(session, title, data=good)
        checked = make_asset(session, title, data=good)
        checked.sha256_verified_at = checked.created_at
        session.commit()
    s3_storage.put_bytes(ok.storage_key, good)
    s3_storage.put_bytes(wrong.storage_key, bad)  # declared: the SHA-256 of `good`
    s3_storage.put_bytes(checked.storage_key, bad)  # checked before: not read unless named
    for name, value in {
        "DATABASE_URL": database_url,
        "S3_ENDPOINT_URL": seaweedfs.endpoint_url,
        "S3_BUCKET": s3_storage.bucket,
        "AWS_ACCESS_KEY_ID": seaweedfs.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key,
    }.items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(main, ["catalog", "verify-assets"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert f"{ok.id} verified: the stored bytes have the declared SHA-256" in lines
    assert any(line.startswith(f"{wrong.id} NOT AS DECLARED") for line in lines)
    assert not any(line.startswith(checked.id) for line in lines)
    assert lines[-1] == "2 assets checked, 1 not as declared"
    with Session(committing_engine) as session:
        states = dict(session.execute(select(Asset.id, Asset.status)).all())
    assert states == {ok.id: "ready", wrong.id: "pending", checked.id: "ready"}

    again = CliRunner().invoke(main, ["catalog", "verify-assets"])  # nothing left to check
    assert again.exit_code == 0 and again.output.splitlines()[-1].startswith("0 assets")
    named = CliRunner().invoke(main, ["catalog", "verify-assets", "--asset", checked.id])
    assert named.exit_code == 1 and f"{checked.id} NOT AS DECLARED" in named.output
