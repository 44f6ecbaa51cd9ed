"""One runtime for every entry point: the web app, the CLI and workers build it the same way
(marketplace.bootstrap), and the cross-domain rules hold whatever was built first in the
process, since nothing registers itself on import or on create_app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from catalog.models import Title
from catalog.rules import CATALOG_RULES
from config import Settings
from contracts.service import exclusivity_check, licensed_title_guard
from marketplace.bootstrap import build_runtime
from marketplace.core.runtime import MissingComponent, ReadOnlyViolation, Runtime
from marketplace.core.storage.fake import InMemoryStorage
from tests.catalog.factories import make_asset, make_grant, make_title
from tests.delivery.builders import make_contract
from tests.helpers import problem
from tests.world import World

# A fresh interpreter that imports no web code: it builds the runtime as the CLI and the
# worker do, and asks the catalog's questions through it.
_ENTRY_POINT = textwrap.dedent(
    """
    import json, sys
    from datetime import date
    from config import Settings
    from marketplace.bootstrap import build_runtime
    from marketplace.core.queue import ListQueue
    from marketplace.core.storage.fake import InMemoryStorage
    from catalog.clearance import check_clearance
    from catalog.rules import CATALOG_RULES
    from catalog.titles import delete_title
    from marketplace.accounts.principal import Principal
    from marketplace.core.errors import Conflict

    url, studio_id, title_id = sys.argv[1:4]
    runtime = build_runtime(
        Settings(env="test", database_url=url), storage=InMemoryStorage("x"), queue=ListQueue()
    )
    rules = runtime.get(CATALOG_RULES)
    owner = Principal("cli", studio_id, "studio", "owner")
    with runtime.unit_of_work() as uow:
        result = check_clearance(
            uow.session, owner, title_ids=[title_id], uses=["train"], territories=["US"],
            start=date.today(), end=date.today(), exclusive=True,
            checks=rules.clearance_checks,
        )
    try:
        with runtime.unit_of_work() as uow:
            delete_title(uow.session, owner, title_id, guards=rules.deletion_guards)
        deleted = "deleted"
    except Conflict as exc:
        deleted = exc.detail
    runtime.dispose()
    print(json.dumps({
        "reasons": [r.code for b in result.blocked for r in b.reasons],
        "delete": deleted,
        "web_loaded": "marketplace.app" in sys.modules or "flask" in sys.modules,
    }))
    """
)


@pytest.mark.committing
def test_the_cli_and_a_worker_apply_the_rules_the_api_applies(
    committed_world: World,
    committing_engine: Engine,
    database_url: str,
    settings: Settings,
    storage: InMemoryStorage,
    payments: Any,
) -> None:
    from marketplace.app import create_app

    with Session(committing_engine, expire_on_commit=False) as session:
        film = make_title(session, committed_world["studio_a"].org_id)
        make_grant(session, film, exclusive_available=True)
        make_asset(session, film)
        contract = make_contract(session, committed_world, [film.id])
        session.commit()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run(
        [sys.executable, "-c", _ENTRY_POINT, database_url, film.studio_id, film.id],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["web_loaded"] is False
    assert "exclusivity_conflict" in found["reasons"]
    assert contract.id in found["delete"]
    # The API, built afterwards in this process, answers the same.
    client = create_app(settings, storage=storage, payments=payments).test_client()
    headers = committed_world["studio_a"].headers
    body = client.post(
        "/api/v1/clearance",
        json={
            "title_ids": [film.id],
            "uses": ["train"],
            "territories": ["US"],
            "start": contract.starts_on.isoformat(),
            "end": contract.ends_on.isoformat(),
            "exclusive": True,
        },
        headers=headers,
    ).get_json()
    assert "exclusivity_conflict" in [r["code"] for r in body["blocked"][0]["reasons"]]
    refused = problem(client.delete(f"/api/v1/titles/{film.id}", headers=headers), 409, "conflict")
    assert contract.id in refused["detail"]


def test_the_runtime_files_the_contracts_rules_for_the_catalog(settings: Settings) -> None:
    runtime = build_runtime(settings, storage=InMemoryStorage("x"))
    try:
        rules = runtime.get(CATALOG_RULES)
        assert rules.clearance_checks == (exclusivity_check,)
        assert rules.deletion_guards == (licensed_title_guard,)
    finally:
        runtime.dispose()


def test_a_missing_component_is_a_wiring_error(settings: Settings) -> None:
    from marketplace.core.runtime import Key

    runtime = build_runtime(settings, storage=InMemoryStorage("x"))
    try:
        with pytest.raises(MissingComponent, match="the webhook signer"):
            runtime.get(Key[object]("the webhook signer"))
    finally:
        runtime.dispose()


@pytest.mark.committing
def test_a_unit_of_work_commits_once_or_not_at_all(
    committed_world: World, committing_engine: Engine, settings: Settings
) -> None:
    runtime = build_runtime(settings, storage=InMemoryStorage("x"))
    studio = committed_world["studio_a"].org_id
    try:
        with runtime.unit_of_work() as uow:
            kept = make_title(uow.session, studio)
        with pytest.raises(RuntimeError), runtime.unit_of_work() as uow:
            lost = make_title(uow.session, studio)
            raise RuntimeError("the work failed")
        with pytest.raises(ReadOnlyViolation), runtime.unit_of_work(read_only=True) as uow:
            make_title(uow.session, studio)
    finally:
        runtime.dispose()
    with Session(committing_engine) as session:
        stored = set(session.scalars(select(Title.id)))
    assert kept.id in stored and lost.id not in stored and len(stored) == 1


def test_read_only_sessions_of_one_runtime_leave_anothers_alone(settings: Settings) -> None:
    """The write guard listens on a runtime's own session factories, not on every Session."""
    first: Runtime = build_runtime(settings, storage=InMemoryStorage("x"))
    second: Runtime = build_runtime(settings, storage=InMemoryStorage("x"))
    try:
        with first.unit_of_work(read_only=True) as uow:
            assert uow.session.info.get("clearcut_writes_refused") is True
        plain = Session()
        plain.info["clearcut_writes_refused"] = True
        plain.add(Title(studio_id="org_x", external_id="x", kind="film", name="x"))
        with pytest.raises(Exception) as raised:  # no bind: fails later, not as read-only
            plain.flush()
        assert not isinstance(raised.value, ReadOnlyViolation)
    finally:
        first.dispose()
        second.dispose()
