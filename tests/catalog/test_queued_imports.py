"""Large imports over HTTP run in a worker: answered at once (202) with the report `queued`,
imported by the job (all or nothing, the same report), their progress visible meanwhile."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from catalog.models import ImportJob, Title
from config import Settings
from marketplace.app import create_app
from marketplace.core.jobs import Job
from marketplace.core.queue import ListQueue
from marketplace.core.storage.fake import InMemoryStorage
from marketplace.worker.runner import JobRunner
from marketplace.worker.tasks import HANDLERS
from tests.catalog.test_imports import IMPORTS, film, jsonl, post
from tests.helpers import bound_sessions, problem
from tests.world import World


@pytest.fixture
def queue() -> ListQueue:
    return ListQueue()


@pytest.fixture
def big_app(
    settings: Settings,
    connection: Connection,
    storage: InMemoryStorage,
    payments: Any,
    queue: ListQueue,
) -> Any:
    """The app with a threshold small enough that the test's files go to a worker."""
    return create_app(
        settings.with_overrides(import_async_bytes=1000),
        session_factory=bound_sessions(connection),
        storage=storage,
        payments=payments,
        queue=queue,
    )


def titles_of(session: Session, studio_id: str) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).where(Title.studio_id == studio_id)) or 0


def run_jobs(app: Any, queue: ListQueue) -> list[str]:
    runner = JobRunner(app.extensions["clearcut"].runtime, {h.name: h for h in HANDLERS})
    outcomes = [runner.run(job_id) for job_id, _ in queue.dispatched]
    queue.dispatched.clear()
    return outcomes


def test_a_large_file_is_answered_at_once_and_imported_by_a_worker(
    big_app: Any,
    session: Session,
    world: World,
    queue: ListQueue,
    storage: InMemoryStorage,
) -> None:
    client = big_app.test_client()
    studio = world["studio_a"]
    content = jsonl([film(f"q{i:03d}") for i in range(20)])
    response = post(client, studio.headers, content, "catalog.jsonl")
    assert response.status_code == 202, response.get_data(as_text=True)
    queued = response.get_json()
    assert queued["status"] == "queued" and queued["progress"] is None
    assert response.headers["Location"] == f"{IMPORTS}/{queued['id']}"
    assert titles_of(session, studio.org_id) == 0  # nothing imported in the request
    stored = session.get(ImportJob, queued["id"])
    assert stored is not None and stored.file_key is not None
    assert storage.objects[stored.file_key] == content  # workers on any machine read it there
    assert len(queue.dispatched) == 1  # handed to the queue once the request committed

    assert run_jobs(big_app, queue) == ["succeeded"]
    report = client.get(f"{IMPORTS}/{queued['id']}", headers=studio.headers).get_json()
    assert report["status"] == "succeeded" and report["rows_total"] == 20
    assert report["results"]["title"]["created"] == 20
    assert report["progress"] is None and report["finished_at"] is not None
    assert titles_of(session, studio.org_id) == 20
    # The worker posted its progress as it went; its last word is its last phase done (the
    # records written; on PostgreSQL, which writes new records while checking, the file read).
    last = queue.board[f"import:{queued['id']}"]
    assert last["done"] == last["total"] > 0
    assert (last["phase"], last["unit"]) in (("write", "records"), ("check", "bytes"))
    # Delivered again, the job does nothing more.
    job_id = session.scalar(select(Job.id).where(Job.name == "catalog.import"))
    assert job_id is not None
    assert JobRunner(big_app.extensions["clearcut"].runtime, {}).run(job_id) == "skipped"


def test_a_running_import_shows_its_progress(big_app: Any, world: World, queue: ListQueue) -> None:
    client = big_app.test_client()
    studio = world["studio_a"]
    queued = post(client, studio.headers, jsonl([film(f"p{i}") for i in range(12)]), "c.jsonl")
    import_id = queued.get_json()["id"]
    midway = {"phase": "check", "done": 300, "total": 900, "unit": "bytes"}
    queue.publish(f"import:{import_id}", midway)  # as the worker does while it reads
    report = client.get(f"{IMPORTS}/{import_id}", headers=studio.headers).get_json()
    assert report["status"] == "running"
    assert report["progress"] == midway


def test_a_bad_large_file_fails_whole_with_its_report(
    big_app: Any, session: Session, world: World, queue: ListQueue
) -> None:
    client = big_app.test_client()
    studio = world["studio_a"]
    records = [film(f"b{i:03d}") for i in range(15)] + [film("bad", kind="opera")]
    queued = post(client, studio.headers, jsonl(records), "c.jsonl").get_json()
    assert run_jobs(big_app, queue) == ["succeeded"]  # the job ran; the import failed
    report = client.get(f"{IMPORTS}/{queued['id']}", headers=studio.headers).get_json()
    assert report["status"] == "failed" and report["errors_total"] == 1
    assert report["errors"][0]["row"] == 16 and report["errors"][0]["field"] == "kind"
    assert titles_of(session, studio.org_id) == 0  # all or nothing


def test_a_queued_import_whose_studio_left_fails_with_why(
    big_app: Any, session: Session, world: World, queue: ListQueue
) -> None:
    client = big_app.test_client()
    operator = world["operator"]
    queued = post(
        client,
        operator.headers,
        jsonl([film(f"o{i:03d}") for i in range(20)]),
        "c.jsonl",
        studio_id=world["studio_a"].org_id,
    ).get_json()
    assert queued["status"] == "queued"
    # Meanwhile the organization is no longer a studio (a data fix): the file cannot go in.
    from marketplace.accounts.models import Organization

    org = session.get(Organization, world["studio_a"].org_id)
    assert org is not None
    org.kind = "developer"
    session.commit()
    assert run_jobs(big_app, queue) == ["succeeded"]
    report = client.get(f"{IMPORTS}/{queued['id']}", headers=operator.headers).get_json()
    assert report["status"] == "failed" and report["errors"][0]["row"] is None


def test_small_files_are_still_imported_in_the_request(
    big_app: Any, world: World, queue: ListQueue
) -> None:
    client = big_app.test_client()
    response = post(client, world["studio_a"].headers, jsonl([film("small")]), "c.jsonl")
    assert response.status_code == 201 and response.get_json()["status"] == "succeeded"
    assert queue.dispatched == []


def test_developers_are_refused_before_anything_is_stored(
    big_app: Any, world: World, storage: InMemoryStorage
) -> None:
    client = big_app.test_client()
    content = jsonl([film(f"d{i:03d}") for i in range(20)])
    problem(post(client, world["developer_x"].headers, content, "c.jsonl"), 403, "forbidden")
    assert storage.objects == {}
