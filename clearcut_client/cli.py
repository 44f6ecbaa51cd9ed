"""`marketplace pull` and `marketplace attest`: the client's commands (HTTP only)."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

import click

from clearcut_client.api import Api, ApiError
from clearcut_client.manifest import ManifestInvalid
from clearcut_client.pull import Options, PullError, pull


def _api_key() -> str:
    key = os.environ.get("CLEARCUT_API_KEY")
    if not key:
        raise click.ClickException("set CLEARCUT_API_KEY to your organization's API key")
    return key


def _size(text: str | None) -> int | None:
    if text is None:
        return None
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    text = text.strip().lower().removesuffix("b").removesuffix("i")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


@click.command("pull")
@click.argument("contract_id")
@click.option("--dest", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--api",
    "api_url",
    envvar="CLEARCUT_API_URL",
    required=True,
    help="The service's base URL, e.g. http://127.0.0.1:8000.",
)
@click.option("--parallel", type=click.IntRange(1, 256), default=8, show_default=True)
@click.option("--only", multiple=True, help="Pull only assets of this kind (repeatable).")
@click.option("--max-bytes", help="Pull files in manifest order up to this many bytes (e.g. 10G).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["files", "webdataset"]),
    default="files",
    show_default=True,
)
@click.option(
    "--part-size",
    default="64M",
    show_default=True,
    help="Files larger than this are fetched in ranged parts, in parallel.",
)
@click.option("--quiet", is_flag=True, help="No progress lines.")
def pull_command(
    contract_id: str,
    dest: Path,
    api_url: str,
    parallel: int,
    only: tuple[str, ...],
    max_bytes: str | None,
    fmt: str,
    part_size: str,
    quiet: bool,
) -> None:
    """Download every licensed file of a contract, verified, with its lineage record."""
    opts = Options(
        contract_id=contract_id,
        dest=dest,
        api_url=api_url,
        api_key=_api_key(),
        parallel=parallel,
        only=frozenset(only) or None,
        max_bytes=_size(max_bytes),
        fmt=fmt,
        part_size=_size(part_size) or 64 * 1024 * 1024,
        progress=None if quiet else sys.stderr,
    )
    try:
        result = pull(opts)
    except (PullError, ManifestInvalid) as exc:
        raise click.ClickException(str(exc)) from None
    for path, why in result.failed:
        click.echo(f"NOT VERIFIED {path}: {why}", err=True)
    click.echo(
        f"{len(result.verified)} files verified, {len(result.failed)} not, "
        f"{result.granted} grants; lineage: {result.lineage}"
    )
    if result.skipped:
        click.echo(f"{result.skipped} files left out by --max-bytes", err=True)
    if result.failed:
        sys.exit(1)


@click.command("attest")
@click.argument("contract_id")
@click.option("--api", "api_url", envvar="CLEARCUT_API_URL", required=True)
@click.option("--training-run", "model_name", help="Attest a training run of this model.")
@click.option("--model-version")
@click.option("--deleted", is_flag=True, help="Attest that every copy was deleted.")
@click.option("--started-at", type=click.DateTime())
@click.option("--finished-at", type=click.DateTime())
@click.option("--statement", help="Your words; a default names the manifest version.")
def attest_command(
    contract_id: str,
    api_url: str,
    model_name: str | None,
    model_version: str | None,
    deleted: bool,
    started_at: datetime | None,
    finished_at: datetime | None,
    statement: str | None,
) -> None:
    """Post a training-run or deletion attestation naming the manifest version's hash."""
    if deleted == (model_name is not None):
        raise click.UsageError("give exactly one of --training-run MODEL and --deleted")
    import urllib3

    api = Api(api_url, _api_key(), pool=urllib3.PoolManager())
    try:
        manifest = api.get(f"/contracts/{contract_id}/manifest")
        sha = manifest["manifest_sha256"]
        body: dict[str, object] = {"manifest_sha256": sha}
        if deleted:
            body |= {
                "kind": "deletion",
                "statement": statement or f"Every copy of the data of manifest {sha} was deleted.",
            }
        else:
            body |= {
                "kind": "training_run",
                "model_name": model_name,
                "statement": statement
                or f"Model {model_name} was trained on the data of manifest {sha}.",
            }
            if model_version:
                body["model_version"] = model_version
            for name, value in (("started_at", started_at), ("finished_at", finished_at)):
                if value is not None:
                    body[name] = value.isoformat() + ("Z" if value.tzinfo is None else "")
        created = api.post(f"/contracts/{contract_id}/attestations", body)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"attestation {created['id']} ({created['kind']}) for manifest {sha}")
