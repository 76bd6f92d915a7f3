"""The local backend's durable request queue: asynchronous inference on this machine.

Requests are rows in their own SQLite database (`<home>/queue.db`, WAL), unique by endpoint and
inference id, so queuing an id twice queues it once. Callers write rows (`QueueStore.enqueue`,
from `LocalBackend.invoke_async` or the gateway's SageMaker-shaped
`POST /endpoints/{name}/async-invocations`, which boto3's `invoke_endpoint_async` calls); the
gateway daemon's `Dispatcher` claims them, sends each to a version chosen by the endpoint's
split (at most `max_concurrent_invocations_per_replica` x replicas at once per version, 4 per
replica by default), and writes the answer where the caller reads it.

Each row moves `queued -> running -> done`, or back to `queued` with a backoff after a
transient failure (the version unreachable or timing out, 429, 5xx), or to `dead` (the
dead-letter state, with the last error) after `max_attempts` deliveries or at once when the
model refuses the request (4xx). Answers are written to a temporary file and renamed into place
before the row is marked done, in one transaction that also counts the completion: a request
completes once. A gateway killed with requests in flight leaves them `running`; the next
gateway puts them back in the queue before dispatching, so nothing is lost. A request whose
delivery was cut off by the kill is delivered again (the model may have seen it: the inference
id travels as `X-Amzn-SageMaker-Inference-Id`, so a model can tell), and still completes once.

Where answers go: `<id>.out` (and `<id>-error.out` for failures) under the version's
`async_inference.output_path` / `failure_path` when given, else `<home>/async/<endpoint>/`.
`file://` paths are used as they are; `s3://bucket/key` and `gs://bucket/key` map into the local
object store, `<home>/objects/bucket/key` (InputLocation too), so one spec serves both here
and on SageMaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import orjson

from endpointkit.adapters.local._http.client import UpstreamError, UpstreamTimeout
from endpointkit.adapters.local.gateway import SAGEMAKER
from endpointkit.adapters.local.state import immediate
from endpointkit.async_invocation import AsyncInvocation, AsyncOutcome, InvocationStatus
from endpointkit.errors import EndpointKitError, ModelError, NotFound, Unavailable
from endpointkit.invocation import InvokeRequest, InvokeResult
from endpointkit.spec import AsyncInference, VersionSpec

if TYPE_CHECKING:
    from endpointkit.adapters.base import Backend
    from endpointkit.adapters.local.gateway import Gateway, Router, StreamedResponse
    from endpointkit.serving.types import Headers

__all__ = ["Dispatcher", "QueueStore", "QueuedRow", "locations"]

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"
#: Concurrent deliveries per replica of a version without `async_inference`.
DEFAULT_PER_REPLICA = 4
#: Longest backoff between deliveries of one request, seconds.
MAX_BACKOFF_S = 60.0
#: How often an idle dispatcher looks for rows written by other processes, seconds.
IDLE_POLL_S = 0.02
#: Rows claimed per look.
BATCH = 256

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    inference_id TEXT NOT NULL,
    state TEXT NOT NULL,
    body BLOB,
    input_location TEXT,
    content_type TEXT NOT NULL,
    accept TEXT,
    version TEXT,
    custom_attributes TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    backoff_s REAL NOT NULL,
    not_before REAL NOT NULL,
    last_error TEXT,
    last_status INTEGER,
    served_by TEXT,
    result_type TEXT,
    output_location TEXT NOT NULL,
    failure_location TEXT NOT NULL,
    completions INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    finished_at REAL,
    UNIQUE (endpoint, inference_id)
);
CREATE INDEX IF NOT EXISTS requests_ready ON requests (state, not_before, seq);
"""

_COLUMNS = (
    "seq, endpoint, inference_id, state, input_location, content_type, accept, version, "
    "custom_attributes, attempts, max_attempts, backoff_s, last_error, last_status, served_by, "
    "result_type, output_location, failure_location, completions"
)


@dataclass(frozen=True)
class QueuedRow:
    """One queued request as stored (its body is read only when it is sent)."""

    seq: int
    endpoint: str
    inference_id: str
    state: str
    input_location: str | None
    content_type: str
    accept: str | None
    version: str | None
    custom_attributes: str | None
    attempts: int
    max_attempts: int
    backoff_s: float
    last_error: str | None
    last_status: int | None
    served_by: str | None
    result_type: str | None
    output_location: str
    failure_location: str
    completions: int


class QueueStore:
    """The queue database; safe to share between threads of one process."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.path = home / "queue.db"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives the process being killed (the WAL is in the OS's page
        # cache); only a power cut may lose the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return immediate(self._db, self._lock)

    # -- callers ----------------------------------------------------------------------------------

    def enqueue(
        self,
        request: InvokeRequest,
        *,
        output_location: str,
        failure_location: str,
        max_attempts: int,
        backoff_s: float,
        input_location: str | None = None,
    ) -> tuple[QueuedRow, bool]:
        """Queue `request` (its inference id is set) unless the id is queued on the endpoint
        already; returns the row and whether it was there before."""
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO requests (endpoint, inference_id, state, body, input_location, "
                "content_type, accept, version, custom_attributes, max_attempts, backoff_s, "
                "not_before, output_location, failure_location, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (endpoint, inference_id) DO NOTHING",
                (
                    request.endpoint,
                    request.inference_id,
                    QUEUED,
                    None if input_location else request.body,
                    input_location,
                    request.content_type,
                    request.accept,
                    request.version,
                    request.custom_attributes,
                    max_attempts,
                    backoff_s,
                    now,
                    output_location,
                    failure_location,
                    now,
                ),
            )
            duplicate = cursor.rowcount == 0
            row = self._row(db, request.endpoint, str(request.inference_id))
        assert row is not None
        return row, duplicate

    def get(self, endpoint: str, inference_id: str) -> QueuedRow | None:
        with self._lock:
            return self._row(self._db, endpoint, inference_id)

    def counts(self, endpoint: str | None = None) -> dict[str, int]:
        """How many requests are in each state (of one endpoint, or all)."""
        query = "SELECT state, COUNT(*) FROM requests"
        args: tuple[Any, ...] = ()
        if endpoint is not None:
            query, args = query + " WHERE endpoint = ?", (endpoint,)
        with self._lock:
            found = dict(self._db.execute(query + " GROUP BY state", args).fetchall())
        return {state: int(found.get(state, 0)) for state in (QUEUED, RUNNING, DONE, DEAD)}

    def rows(self, endpoint: str) -> list[QueuedRow]:
        with self._lock:
            found = self._db.execute(
                f"SELECT {_COLUMNS} FROM requests WHERE endpoint = ? ORDER BY seq", (endpoint,)
            ).fetchall()
        return [QueuedRow(*r) for r in found]

    @staticmethod
    def _row(db: sqlite3.Connection, endpoint: str, inference_id: str) -> QueuedRow | None:
        found = db.execute(
            f"SELECT {_COLUMNS} FROM requests WHERE endpoint = ? AND inference_id = ?",
            (endpoint, inference_id),
        ).fetchone()
        return QueuedRow(*found) if found else None

    # -- the dispatcher ---------------------------------------------------------------------------

    def recover(self) -> int:
        """Put requests a killed gateway left in flight back in the queue; returns how many."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE requests SET state = ?, not_before = ? WHERE state = ?",
                (QUEUED, time.time(), RUNNING),
            )
            return int(cursor.rowcount)

    def ready(self, limit: int) -> list[QueuedRow]:
        with self._lock:
            found = self._db.execute(
                f"SELECT {_COLUMNS} FROM requests WHERE state = ? AND not_before <= ? "
                "ORDER BY seq LIMIT ?",
                (QUEUED, time.time(), limit),
            ).fetchall()
        return [QueuedRow(*r) for r in found]

    def claim(self, seqs: list[int]) -> None:
        """Mark rows running (one transaction), counting the delivery that follows."""
        with self._write() as db:
            db.executemany(
                "UPDATE requests SET state = ?, attempts = attempts + 1 "
                "WHERE seq = ? AND state = ?",
                [(RUNNING, seq, QUEUED) for seq in seqs],
            )

    def body(self, seq: int) -> bytes | None:
        with self._lock:
            found = self._db.execute("SELECT body FROM requests WHERE seq = ?", (seq,)).fetchone()
        return bytes(found[0]) if found and found[0] is not None else None

    def complete(self, seq: int, served_by: str, result_type: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE requests SET state = ?, served_by = ?, result_type = ?, "
                "completions = completions + 1, finished_at = ?, last_error = NULL "
                "WHERE seq = ? AND state = ?",
                (DONE, served_by, result_type, time.time(), seq, RUNNING),
            )

    def requeue(
        self, seq: int, error: str, status: int | None, delay_s: float, *, count: bool = True
    ) -> None:
        """Back to the queue after `delay_s`; `count=False` takes the delivery back (it was
        never sent: no version could take it)."""
        with self._write() as db:
            db.execute(
                "UPDATE requests SET state = ?, not_before = ?, last_error = ?, last_status = ?, "
                "attempts = attempts - ? WHERE seq = ? AND state = ?",
                (QUEUED, time.time() + delay_s, error, status, 0 if count else 1, seq, RUNNING),
            )

    def dead(self, seq: int, error: str, status: int | None, served_by: str | None) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE requests SET state = ?, last_error = ?, last_status = ?, served_by = ?, "
                "finished_at = ? WHERE seq = ? AND state = ?",
                (DEAD, error, status, served_by, time.time(), seq, RUNNING),
            )


# -- locations -----------------------------------------------------------------------------------


def local_path(home: Path, uri: str) -> Path:
    """Where `uri` lives on this machine: file:// as is, s3:// and gs:// in the local object
    store (`<home>/objects/<bucket>/<key>`), a plain path as is."""
    if uri.startswith("file://"):
        return Path(unquote(uri.removeprefix("file://")))
    for scheme in ("s3://", "gs://"):
        if uri.startswith(scheme):
            return home / "objects" / uri.removeprefix(scheme)
    return Path(uri)


def locations(
    home: Path, endpoint: str, inference_id: str, section: AsyncInference | None
) -> tuple[str, str]:
    """(output, failure) file:// URIs for one request."""
    name = quote(inference_id, safe="")
    out_dir = home / "async" / endpoint
    fail_dir = out_dir / "failures"
    if section is not None:
        out_dir = local_path(home, section.output_path.rstrip("/"))
        fail_dir = (
            local_path(home, section.failure_path.rstrip("/")) if section.failure_path else out_dir
        )
    return (out_dir / f"{name}.out").as_uri(), (fail_dir / f"{name}-error.out").as_uri()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


# -- the backend's side --------------------------------------------------------------------------


def outcome_of(backend: Backend, home: Path, row: QueuedRow) -> AsyncOutcome:
    """What a caller sees of a row: status, and the answer or error once done."""
    if row.state in (QUEUED, RUNNING):
        status = InvocationStatus.QUEUED if row.state == QUEUED else InvocationStatus.IN_PROGRESS
        return AsyncOutcome(status, attempts=row.attempts)
    context: dict[str, Any] = {
        "backend": backend.name,
        "operation": "invoke_async",
        "endpoint": row.endpoint,
        "version": row.served_by,
    }
    if row.state == DONE:
        data = local_path(home, row.output_location).read_bytes()
        result = InvokeResult(
            body=data,
            content_type=row.result_type or "application/octet-stream",
            version=row.served_by,
            headers={"x-endpointkit-version": row.served_by or ""},
        )
        return AsyncOutcome(InvocationStatus.COMPLETED, result, attempts=row.attempts)
    try:
        body = local_path(home, row.failure_location).read_bytes()
    except OSError:
        body = (row.last_error or "").encode()
    message = (
        f"asynchronous request {row.inference_id} to {row.endpoint!r} failed after "
        f"{row.attempts} deliver{'y' if row.attempts == 1 else 'ies'}: {row.last_error}"
    )
    error: EndpointKitError
    if row.last_status is not None:
        error = ModelError(message, status=row.last_status, body=body, **context)
    else:
        error = Unavailable(message, hint="It is in the dead-letter state.", **context)
    return AsyncOutcome(InvocationStatus.FAILED, error=error, attempts=row.attempts)


def handle_of(backend: Backend, row: QueuedRow, *, duplicate: bool = False) -> AsyncInvocation:
    return AsyncInvocation(
        backend,
        row.endpoint,
        row.inference_id,
        row.output_location,
        row.failure_location,
        duplicate=duplicate,
    )


def not_queued(backend: Backend, endpoint: str, inference_id: str) -> NotFound:
    return NotFound(
        f"no asynchronous request {inference_id!r} was queued on {endpoint!r}.",
        hint="Check the inference id that 'invoke --async' printed.",
        backend=backend.name,
        operation="result",
        endpoint=endpoint,
    )


# -- the gateway's side --------------------------------------------------------------------------


class Dispatcher:
    """Runs in the gateway daemon: claims queued rows and delivers them to versions.

    `spec_of(endpoint, version)` gives a running version's spec (its replicas and async
    settings); `exists(endpoint)` says whether the endpoint is still in state.
    """

    def __init__(
        self,
        home: Path,
        router: Router,
        *,
        spec_of: Callable[[str, str], VersionSpec | None],
        section_of: Callable[[str], AsyncInference | None],
        exists: Callable[[str], bool],
        timeout: float,
    ) -> None:
        self.home = home
        self.store = QueueStore(home)
        self.router = router
        self.spec_of = spec_of
        self.section_of = section_of
        self.exists = exists
        self.timeout = timeout
        self.wake = asyncio.Event()
        self.inflight: dict[tuple[str, str], int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.random = random.Random()
        self.recovered = 0

    def limit(self, endpoint: str, version: str) -> int:
        spec = self.spec_of(endpoint, version)
        if spec is None:
            return DEFAULT_PER_REPLICA
        section = spec.async_inference
        per = (
            section.max_concurrent_invocations_per_replica
            if section is not None and section.max_concurrent_invocations_per_replica
            else DEFAULT_PER_REPLICA
        )
        return per * max(1, spec.resources.min_replicas)

    async def run(self) -> None:
        """Dispatch until `stop`; requests a previous gateway left in flight go first."""
        self.recovered = self.store.recover()
        while not self.stopping:
            sent = self._dispatch_ready()
            if sent:
                await asyncio.sleep(0)  # let the deliveries start
                continue
            self.wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), IDLE_POLL_S)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let deliveries in flight finish (rows still running after `grace`
        go back to the queue at the next start)."""
        self.stopping = True
        self.wake.set()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=grace)
        self.store.close()

    def _dispatch_ready(self) -> int:
        """Claim what can be sent now and start sending it; returns how many."""
        from endpointkit.adapters.local.gateway import NoRoute

        free = self._free_slots()
        if free <= 0:
            return 0
        # A few more rows than free slots: a pick may land on a version that is full. Reading
        # only that many keeps each look cheap however long the queue is.
        rows = self.store.ready(min(BATCH, 2 * free + 8))
        if not rows:
            return 0
        chosen: list[tuple[QueuedRow, Any]] = []
        full: set[tuple[str, str]] = set()
        for row in rows:
            route = self.router.routes.get(row.endpoint)
            if route is None:
                if not self.exists(row.endpoint):
                    self.store.claim([row.seq])
                    self._fail(row, None, f"endpoint {row.endpoint!r} no longer exists", None)
                continue  # the gateway is still loading it
            try:
                upstream = self.router.pick(route, row.version, None)
            except NoRoute as exc:
                if exc.code == "version_not_found" and row.version is not None:
                    self.store.claim([row.seq])
                    self._fail(row, None, exc.message, None)
                continue  # no healthy version with traffic yet: it waits in the queue
            key = (row.endpoint, upstream.name)
            if key in full:
                continue
            if self.inflight.get(key, 0) >= self.limit(*key):
                full.add(key)
                continue
            self.inflight[key] = self.inflight.get(key, 0) + 1
            chosen.append((row, upstream))
        if not chosen:
            return 0
        self.store.claim([row.seq for row, _ in chosen])
        loop = asyncio.get_running_loop()
        for row, upstream in chosen:
            task = loop.create_task(self._deliver(row, upstream))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return len(chosen)

    def _free_slots(self) -> int:
        """Deliveries that could start now, over every version that serves or is pinnable
        (an endpoint the gateway does not route yet counts one, so its rows are looked at)."""
        free = 0
        for name, route in self.router.routes.items():
            for version, upstream in route.upstreams.items():
                if upstream.healthy and not upstream.draining:
                    free += max(
                        0, self.limit(name, version) - self.inflight.get((name, version), 0)
                    )
        return free or (1 if not self.router.routes else 0)

    async def _deliver(self, row: QueuedRow, upstream: Any) -> None:
        key = (row.endpoint, upstream.name)
        try:
            await self._send_one(row, upstream)
        except Exception as exc:  # a bug here must not lose the row: it is retried
            self._retry(row, f"{type(exc).__name__}: {exc}", None)
        finally:
            self.inflight[key] -= 1
            self.wake.set()

    async def _send_one(self, row: QueuedRow, upstream: Any) -> None:
        attempt = row.attempts + 1
        try:
            body = self._input(row)
        except OSError as exc:
            self._fail(row, None, f"cannot read the input {row.input_location}: {exc}", None)
            return
        pool = upstream.pool
        if pool is None or not upstream.healthy:
            self.store.requeue(row.seq, "no healthy version", None, 0.05, count=False)
            return
        headers: list[tuple[bytes, bytes]] = [(b"content-type", row.content_type.encode())]
        if row.accept:
            headers.append((b"accept", row.accept.encode()))
        if row.custom_attributes is not None:
            headers.append((b"x-amzn-sagemaker-custom-attributes", row.custom_attributes.encode()))
        headers.append((b"x-amzn-sagemaker-inference-id", row.inference_id.encode()))
        upstream.inflight += 1
        try:
            status, out_headers, out_body = await pool.request(
                b"POST", b"/invocations", headers, body, self.timeout
            )
        except UpstreamError as exc:
            upstream.errors += 1
            self._retry(row, f"version {upstream.name!r} unreachable: {exc}", None, attempt)
            return
        except UpstreamTimeout:
            upstream.errors += 1
            message = f"version {upstream.name!r} did not answer within {self.timeout:g} s"
            self._retry(row, message, None, attempt)
            return
        finally:
            upstream.inflight -= 1
        ctype = next((v for k, v in out_headers if k == b"content-type"), b"application/json")
        if status < 400:
            upstream.served += 1
            _write_atomically(local_path(self.home, row.output_location), out_body)
            self.store.complete(row.seq, upstream.name, ctype.decode("latin-1"))
            return
        upstream.errors += 1
        text = out_body[:300].decode("utf-8", "replace")
        message = f"version {upstream.name!r} answered {status}: {text}"
        if status == 429 or status >= 500:
            self._retry(row, message, status, attempt, failure=out_body, served_by=upstream.name)
        else:  # the model refused the request: delivering it again changes nothing
            self._fail(row, status, message, upstream.name, out_body)

    def _input(self, row: QueuedRow) -> bytes:
        if row.input_location:
            return local_path(self.home, row.input_location).read_bytes()
        return self.store.body(row.seq) or b""

    def _retry(
        self,
        row: QueuedRow,
        error: str,
        status: int | None,
        attempt: int | None = None,
        *,
        failure: bytes | None = None,
        served_by: str | None = None,
    ) -> None:
        attempt = attempt or row.attempts + 1
        if attempt >= row.max_attempts:
            self._fail(row, status, error, served_by, failure)
            return
        delay = min(MAX_BACKOFF_S, row.backoff_s * 2 ** (attempt - 1))
        delay *= 0.5 + self.random.random() / 2  # jitter: retries of a burst spread out
        self.store.requeue(row.seq, error, status, delay)

    def _fail(
        self,
        row: QueuedRow,
        status: int | None,
        error: str,
        served_by: str | None,
        body: bytes | None = None,
    ) -> None:
        """Dead-letter the row, with its last error written to the failure location."""
        data = body if body is not None else orjson.dumps({"error": error})
        _write_atomically(local_path(self.home, row.failure_location), data)
        self.store.dead(row.seq, error, status, served_by)

    # -- the gateway route ------------------------------------------------------------------------

    async def handle(
        self, gateway: Gateway, method: str, path: str, query: bytes, headers: Headers, body: bytes
    ) -> StreamedResponse | None:
        """SageMaker's InvokeEndpointAsync, `POST /endpoints/{name}/async-invocations`; None
        for any other path."""
        if not path.startswith("/endpoints/") or not path.endswith("/async-invocations"):
            return None
        name = path[len("/endpoints/") : -len("/async-invocations")]
        if method != "POST":
            return _error(405, "ValidationError", f"{path} accepts POST")
        refused = gateway.refusal(SAGEMAKER, method, path, query, headers, body)
        if refused is not None:  # the bearer token or a SigV4 signature, as for InvokeEndpoint
            return refused
        if name not in self.router.routes:
            return _error(404, "ValidationError", f"Endpoint {name} of account local not found.")
        get = dict(headers).get
        location = (get(b"x-amzn-sagemaker-inputlocation") or b"").decode()
        if location:
            path_in = local_path(self.home, location)
            if not path_in.is_file():
                return _error(
                    400,
                    "ValidationError",
                    f"InputLocation {location} is not a file on this machine ({path_in}); give "
                    "a file:// URL or an s3:// object in the local object store "
                    f"({self.home / 'objects'}).",
                )
        inference_id = (get(b"x-amzn-sagemaker-inference-id") or b"").decode()
        if not inference_id:
            import uuid

            inference_id = uuid.uuid4().hex
        accept = get(b"x-amzn-sagemaker-accept")
        attrs = get(b"x-amzn-sagemaker-custom-attributes")
        request = InvokeRequest(
            name,
            b"" if location else body,
            (get(b"x-amzn-sagemaker-content-type") or b"application/json").decode(),
            accept.decode() if accept else None,
            None,
            attrs.decode() if attrs else None,
            inference_id,
        )
        output, failure = locations(self.home, name, inference_id, self.section_of(name))
        row, _ = self.store.enqueue(
            request,
            output_location=output,
            failure_location=failure,
            max_attempts=DEFAULT_MAX_ATTEMPTS,
            backoff_s=DEFAULT_BACKOFF_S,
            input_location=location or None,
        )
        self.wake.set()
        return (
            202,
            [
                (b"content-type", b"application/json"),
                (b"x-amzn-sagemaker-outputlocation", row.output_location.encode()),
                (b"x-amzn-sagemaker-failurelocation", row.failure_location.encode()),
            ],
            orjson.dumps({"InferenceId": row.inference_id}),
        )


#: Deliveries of one request before it is dead-lettered, and the first backoff (doubling).
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_S = 1.0


def _error(status: int, kind: str, message: str) -> tuple[int, Headers, bytes]:
    return (
        status,
        [(b"content-type", b"application/json"), (b"x-amzn-errortype", kind.encode())],
        orjson.dumps({"message": message}),
    )


def attach(daemon: Any) -> Dispatcher:
    """Give the gateway daemon its dispatcher and the async-invocations route."""

    def spec_of(endpoint: str, version: str) -> VersionSpec | None:
        proc = daemon.procs.get((endpoint, version))
        return proc.spec if proc is not None else None

    def section_of(endpoint: str) -> AsyncInference | None:
        row = daemon.store.endpoint(endpoint)
        return section_for(row.versions if row is not None else [])

    dispatcher = Dispatcher(
        daemon.home,
        daemon.router,
        spec_of=spec_of,
        section_of=section_of,
        exists=lambda endpoint: daemon.store.endpoint(endpoint) is not None,
        timeout=daemon.gateway.timeout,
    )
    gateway = daemon.gateway

    async def route(
        method: str, path: str, query: bytes, headers: Headers, body: bytes
    ) -> StreamedResponse | None:
        return await dispatcher.handle(gateway, method, path, query, headers, body)

    gateway.fallback = route
    return dispatcher


def section_for(versions: Any) -> AsyncInference | None:
    """The endpoint's async_inference section: the first version's that has one."""
    for version in versions:
        if version.spec.async_inference is not None:
            return version.spec.async_inference  # type: ignore[no-any-return]
    return None
