"""The local backend's state: one SQLite database (WAL) shared by every process.

Callers (the API, the CLI) write desired state; the gateway daemon writes what happened (a
version became ready, failed, drained). Every change is one `BEGIN IMMEDIATE` transaction, so a
process killed mid-change leaves the old state or the new one, never a mix. The schema carries
its version in `PRAGMA user_version`; `MIGRATIONS[i]` upgrades version i to i + 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from endpointkit.errors import ValidationError
from endpointkit.spec import Shadow, TrafficSplit, VersionSpec
from endpointkit.state import Event, Status

__all__ = [
    "FAILED",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "EndpointRow",
    "GatewayRow",
    "Store",
    "VersionRow",
    "default_home",
]

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the first schema.
    """
    CREATE TABLE endpoints (
        name TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        failure_reason TEXT,
        log_hint TEXT,
        traffic TEXT NOT NULL,
        pending_traffic TEXT,
        shadow TEXT,
        tags TEXT NOT NULL,
        rate_limit TEXT,
        generation INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE versions (
        endpoint TEXT NOT NULL REFERENCES endpoints(name) ON DELETE CASCADE,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        spec_hash TEXT NOT NULL,
        phase TEXT NOT NULL,
        created_at REAL NOT NULL,
        pid INTEGER,
        port INTEGER,
        healthy INTEGER NOT NULL DEFAULT 0,
        restarts INTEGER NOT NULL DEFAULT 0,
        log_path TEXT,
        PRIMARY KEY (endpoint, name)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        endpoint TEXT NOT NULL,
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        version TEXT,
        message TEXT NOT NULL,
        traffic_before TEXT,
        traffic_after TEXT
    );
    CREATE INDEX events_by_endpoint ON events (endpoint, id);
    CREATE TABLE gateway (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pid INTEGER,
        host TEXT,
        port INTEGER,
        secret TEXT,
        started_at REAL,
        ready INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 1 -> 2: why a failed version (phase "failed") could not start again.
    """
    ALTER TABLE versions ADD COLUMN failure_reason TEXT;
    """,
    # 2 -> 3: the Unix socket a version process listens on (port stays NULL then).
    """
    ALTER TABLE versions ADD COLUMN socket TEXT;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Version phases: "starting" (deploy in progress, no traffic yet), "ready" (serving or idle),
# "draining" (undeployed: no new requests, in-flight ones finish, then the process stops),
# "failed" (was ready, but a gateway started from state could not start it again: it keeps
# its place and its share in the spec, gets no requests, and the next gateway tries again).
STARTING, READY, DRAINING, FAILED = "starting", "ready", "draining", "failed"


@contextlib.contextmanager
def immediate(db: sqlite3.Connection, lock: Any) -> Iterator[sqlite3.Connection]:
    """One atomic change on `db` under `lock`: BEGIN IMMEDIATE (the write lock at once, so
    another process's writer waits instead of failing at COMMIT) ... COMMIT, rolled back on
    any error. Every SQLite database of the local backend writes through this."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def default_home() -> Path:
    """Where local state lives unless `home=` says: `ENDPOINTKIT_HOME`; else a project's own
    `.endpointkit` folder, found in the working directory or above it (as git finds `.git`);
    else one per user, `$XDG_STATE_HOME/endpointkit` (`~/.local/state/endpointkit`), so
    commands from any folder see the same endpoints and gateway."""
    configured = os.environ.get("ENDPOINTKIT_HOME")
    if configured:
        return Path(configured).absolute()
    here = Path.cwd()
    for folder in (here, *here.parents):
        project = folder / ".endpointkit"
        if project.is_dir():
            return project
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state).absolute() / "endpointkit"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _split(text: str | None) -> TrafficSplit:
    return TrafficSplit(json.loads(text)) if text else TrafficSplit({})


def _dt(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


@dataclass(frozen=True)
class VersionRow:
    """A version as stored: its spec, lifecycle phase and (once started) its process."""

    endpoint: str
    name: str
    spec: VersionSpec
    spec_hash: str
    phase: str
    created_at: float
    pid: int | None
    port: int | None
    healthy: bool
    restarts: int
    log_path: str | None
    failure_reason: str | None = None  # phase "failed": why it could not start again
    socket: str | None = None  # its Unix socket (where it has one, `port` is None)


@dataclass(frozen=True)
class EndpointRow:
    """An endpoint as stored, with its versions in deploy order."""

    name: str
    status: Status
    failure_reason: str | None
    log_hint: str | None
    traffic: TrafficSplit
    shadow: Shadow | None
    tags: dict[str, str]
    rate_limit: dict[str, float] | None
    generation: int
    created_at: float
    updated_at: float
    versions: tuple[VersionRow, ...]

    def version(self, name: str) -> VersionRow | None:
        return next((v for v in self.versions if v.name == name), None)


@dataclass(frozen=True)
class GatewayRow:
    """Where the gateway daemon listens, and the secret its control routes require."""

    pid: int | None
    host: str | None
    port: int | None
    secret: str | None
    started_at: float | None
    ready: bool

    @property
    def url(self) -> str | None:
        if self.port is None:
            return None
        host = self.host or "127.0.0.1"
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"


class Store:
    """Typed access to the state database. One instance per process; not thread-safe."""

    def __init__(self, home: str | Path) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        self.path = self.home / "state.db"
        fresh = not self.path.exists()
        # One connection shared by the threads of one process (AsyncEndpoint runs control
        # calls in worker threads); `_lock` serialises its use.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        if fresh:
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- transactions and migrations -------------------------------------------------------

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One atomic change: BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        return immediate(self._db, self._lock)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read (one snapshot, even across several queries)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self.transaction() as db:
            current = int(db.execute("PRAGMA user_version").fetchone()[0])
            if current > SCHEMA_VERSION:
                raise ValidationError(
                    f"local state in {self.home} has schema version {current}, newer than this "
                    f"endpointkit understands ({SCHEMA_VERSION}).",
                    hint="Upgrade endpointkit, or point ENDPOINTKIT_HOME at another folder.",
                    backend="local",
                )
            for index in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[index].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {index + 1}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # -- reads -----------------------------------------------------------------------------

    def endpoint(self, name: str) -> EndpointRow | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM endpoints WHERE name = ?", (name,)).fetchone()
            return None if row is None else self._endpoint(row)

    def endpoints(self) -> list[EndpointRow]:
        with self._read() as db:
            rows = db.execute("SELECT * FROM endpoints ORDER BY name").fetchall()
            return [self._endpoint(row) for row in rows]

    def _endpoint(self, row: sqlite3.Row) -> EndpointRow:
        versions = self._db.execute(
            "SELECT * FROM versions WHERE endpoint = ? ORDER BY created_at, rowid", (row["name"],)
        ).fetchall()
        return EndpointRow(
            name=row["name"],
            status=Status(row["status"]),
            failure_reason=row["failure_reason"],
            log_hint=row["log_hint"],
            traffic=_split(row["traffic"]),
            shadow=Shadow.model_validate_json(row["shadow"]) if row["shadow"] else None,
            tags=json.loads(row["tags"]),
            rate_limit=json.loads(row["rate_limit"]) if row["rate_limit"] else None,
            generation=row["generation"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            versions=tuple(
                VersionRow(
                    endpoint=v["endpoint"],
                    name=v["name"],
                    spec=VersionSpec.model_validate_json(v["spec"]),
                    spec_hash=v["spec_hash"],
                    phase=v["phase"],
                    created_at=v["created_at"],
                    pid=v["pid"],
                    port=v["port"],
                    healthy=bool(v["healthy"]),
                    restarts=v["restarts"],
                    log_path=v["log_path"],
                    failure_reason=v["failure_reason"],
                    socket=v["socket"],
                )
                for v in versions
            ),
        )

    def has_history(self, name: str) -> bool:
        with self._read() as db:
            row = db.execute("SELECT 1 FROM events WHERE endpoint = ? LIMIT 1", (name,))
            return row.fetchone() is not None

    def events(self, name: str) -> list[Event]:
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM events WHERE endpoint = ? ORDER BY id", (name,)
            ).fetchall()
        return [
            Event(
                time=_dt(row["time"]),
                endpoint=row["endpoint"],
                kind=row["kind"],
                version=row["version"],
                message=row["message"],
                traffic_before=json.loads(row["traffic_before"]) if row["traffic_before"] else None,
                traffic_after=json.loads(row["traffic_after"]) if row["traffic_after"] else None,
            )
            for row in rows
        ]

    def gateway(self) -> GatewayRow:
        with self._read() as db:
            row = db.execute("SELECT * FROM gateway WHERE id = 1").fetchone()
        if row is None:
            return GatewayRow(None, None, None, None, None, False)
        return GatewayRow(
            row["pid"],
            row["host"],
            row["port"],
            row["secret"],
            row["started_at"],
            bool(row["ready"]),
        )

    # -- writes (each one transaction) -----------------------------------------------------

    @staticmethod
    def record(
        db: sqlite3.Connection,
        endpoint: str,
        kind: str,
        message: str,
        *,
        version: str | None = None,
        before: TrafficSplit | None = None,
        after: TrafficSplit | None = None,
    ) -> None:
        """Append an event inside the caller's transaction (its time is taken there, so event
        times grow with their ids even across processes)."""
        db.execute(
            "INSERT INTO events (endpoint, time, kind, version, message, traffic_before, "
            "traffic_after) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                endpoint,
                time.time(),
                kind,
                version,
                message,
                _dumps(before.root) if before is not None else None,
                _dumps(after.root) if after is not None else None,
            ),
        )

    @staticmethod
    def update_endpoint(db: sqlite3.Connection, name: str, **fields: Any) -> None:
        """Set columns of an endpoint (JSON-encoding splits and shadows); bumps its generation."""
        encoded: dict[str, Any] = {}
        for key, value in fields.items():
            if isinstance(value, TrafficSplit):
                value = _dumps(value.root)
            elif isinstance(value, Shadow):
                value = value.model_dump_json()
            elif isinstance(value, Status):
                value = value.value
            elif isinstance(value, Mapping):
                value = _dumps(dict(value))
            encoded[key] = value
        assignments = ", ".join(f"{key} = ?" for key in encoded)
        db.execute(
            f"UPDATE endpoints SET {assignments}, generation = generation + 1, updated_at = ? "
            "WHERE name = ?",
            (*encoded.values(), time.time(), name),
        )

    def insert_endpoint(
        self,
        name: str,
        version: VersionSpec,
        tags: Mapping[str, str],
        *,
        spec_hash: str | None = None,
    ) -> None:
        """A new endpoint (Creating) whose first version starts with 100% once ready;
        `spec_hash` identifies the version if not `version`'s own (see `add_version`)."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO endpoints (name, status, traffic, pending_traffic, tags, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    Status.CREATING.value,
                    "{}",
                    _dumps({version.name: 100}),
                    _dumps(dict(tags)),
                    now,
                    now,
                ),
            )
            self._insert_version(db, name, version, now, spec_hash)
            # a new endpoint of an old name starts its own history (as on every backend)
            db.execute("DELETE FROM events WHERE endpoint = ?", (name,))
            self.record(db, name, "created", "endpoint created", version=version.name)

    @staticmethod
    def _insert_version(
        db: sqlite3.Connection,
        endpoint: str,
        version: VersionSpec,
        now: float,
        spec_hash: str | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO versions (endpoint, name, spec, spec_hash, phase, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                endpoint,
                version.name,
                version.model_dump_json(),
                spec_hash or version.spec_hash,
                STARTING,
                now,
            ),
        )

    def add_version(
        self,
        name: str,
        version: VersionSpec,
        traffic: TrafficSplit,
        *,
        spec_hash: str | None = None,
    ) -> None:
        """Start deploying `version`; `traffic` takes effect once it is ready. `spec_hash`
        identifies the version as the caller gave it, when `version` is stored changed (a
        model path made absolute), so deploying the same spec again stays a no-op."""
        with self.transaction() as db:
            self._insert_version(db, name, version, time.time(), spec_hash)
            self.update_endpoint(
                db, name, status=Status.UPDATING, pending_traffic=traffic, failure_reason=None
            )

    def remove_version(self, name: str, version: str, traffic: TrafficSplit) -> None:
        """Move traffic off `version` now and mark it draining; the daemon stops it."""
        with self.transaction() as db:
            row = db.execute("SELECT traffic FROM endpoints WHERE name = ?", (name,)).fetchone()
            before = _split(row["traffic"])
            db.execute(
                "UPDATE versions SET phase = ? WHERE endpoint = ? AND name = ?",
                (DRAINING, name, version),
            )
            self.update_endpoint(db, name, status=Status.UPDATING, traffic=traffic)
            self.record(
                db, name, "undeployed", "undeployed", version=version, before=before, after=traffic
            )

    def set_traffic(self, name: str, traffic: TrafficSplit) -> None:
        with self.transaction() as db:
            row = db.execute("SELECT traffic FROM endpoints WHERE name = ?", (name,)).fetchone()
            before = _split(row["traffic"])
            self.update_endpoint(db, name, status=Status.UPDATING, traffic=traffic)
            self.record(db, name, "traffic", "traffic changed", before=before, after=traffic)

    def set_shadow(self, name: str, shadow: Shadow | None) -> None:
        with self.transaction() as db:
            self.update_endpoint(db, name, status=Status.UPDATING, shadow=shadow)
            message = (
                f"shadow set to {shadow.version} at {shadow.sample_percent}%"
                if shadow
                else "shadow cleared"
            )
            self.record(db, name, "shadow", message, version=shadow.version if shadow else None)

    def scale_version(self, name: str, version: VersionSpec) -> None:
        """Store `version`'s new scaling; the daemon brings its processes to it."""
        with self.transaction() as db:
            db.execute(
                "UPDATE versions SET spec = ? WHERE endpoint = ? AND name = ?",
                (version.model_dump_json(), name, version.name),
            )
            self.update_endpoint(db, name, status=Status.UPDATING, failure_reason=None)

    def finish_scale(self, name: str, running: VersionSpec, *, ok: bool, message: str) -> None:
        """Record how scaling ended; `running` is the spec of the process now serving (the
        old one when it failed, which goes back into state so state says what runs)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE versions SET spec = ? WHERE endpoint = ? AND name = ?",
                (running.model_dump_json(), name, running.name),
            )
            if not ok:
                self.update_endpoint(db, name, failure_reason=message)
            self.record(db, name, "scaled" if ok else "failed", message, version=running.name)

    def set_rate_limit(self, name: str, limit: dict[str, float] | None) -> None:
        with self.transaction() as db:
            self.update_endpoint(db, name, rate_limit=limit)

    def mark_deleting(self, name: str) -> None:
        with self.transaction() as db:
            self.update_endpoint(db, name, status=Status.DELETING)

    # -- writes by the daemon --------------------------------------------------------------

    def commit_deploy(self, name: str, version: str, start_seconds: float | None = None) -> None:
        """The version answered its health check: it joins with the pending split."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM endpoints WHERE name = ?", (name,)).fetchone()
            if row is None:
                return
            before = _split(row["traffic"])
            after = _split(row["pending_traffic"]) if row["pending_traffic"] else before
            db.execute(
                "UPDATE versions SET phase = ?, healthy = 1 WHERE endpoint = ? AND name = ?",
                (READY, name, version),
            )
            self.update_endpoint(db, name, traffic=after, pending_traffic=None)
            self.record(
                db,
                name,
                "deployed",
                f"deployed with {after[version]}% of traffic"
                + (f" (process ready in {start_seconds:.2f} s)" if start_seconds else ""),
                version=version,
                before=before if row["status"] != Status.CREATING.value else None,
                after=after,
            )

    def fail_deploy(self, name: str, version: str, reason: str, log_hint: str) -> None:
        """The version could not start: drop it; a new endpoint becomes Failed, an existing one
        keeps serving its old versions and reports why."""
        with self.transaction() as db:
            row = db.execute("SELECT status FROM endpoints WHERE name = ?", (name,)).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM versions WHERE endpoint = ? AND name = ?", (name, version))
            fields: dict[str, Any] = {
                "failure_reason": reason,
                "log_hint": log_hint,
                "pending_traffic": None,
            }
            if row["status"] == Status.CREATING.value:
                fields["status"] = Status.FAILED
            self.update_endpoint(db, name, **fields)
            self.record(db, name, "failed", reason, version=version)

    def fail_restart(self, name: str, version: str, reason: str, log_hint: str) -> None:
        """A ready version could not be started again (by a gateway started from state): it
        stays in the spec with its share, shown failed with `reason`; nothing else changes."""
        with self.transaction() as db:
            db.execute(
                "UPDATE versions SET phase = ?, healthy = 0, pid = NULL, port = NULL, "
                "socket = NULL, failure_reason = ? WHERE endpoint = ? AND name = ?",
                (FAILED, reason, name, version),
            )
            self.update_endpoint(db, name, failure_reason=reason, log_hint=log_hint)
            self.record(db, name, "failed", reason, version=version)

    def recover(self, name: str, version: str, message: str) -> None:
        """A failed version started again: ready, and the endpoint's failure is cleared once
        no version is failed any more."""
        with self.transaction() as db:
            db.execute(
                "UPDATE versions SET phase = ?, healthy = 1, failure_reason = NULL "
                "WHERE endpoint = ? AND name = ?",
                (READY, name, version),
            )
            left = db.execute(
                "SELECT COUNT(*) FROM versions WHERE endpoint = ? AND phase = ?", (name, FAILED)
            ).fetchone()[0]
            if not left:
                self.update_endpoint(db, name, failure_reason=None, log_hint=None)
            self.record(db, name, "restarted", message, version=version)

    def drop_version(self, name: str, version: str) -> None:
        """A drained version's process has stopped: forget it."""
        with self.transaction() as db:
            db.execute("DELETE FROM versions WHERE endpoint = ? AND name = ?", (name, version))

    def set_process(
        self,
        name: str,
        version: str,
        *,
        pid: int | None,
        port: int | None,
        log_path: str,
        socket: str | None = None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE versions SET pid = ?, port = ?, socket = ?, log_path = ? WHERE "
                "endpoint = ? AND name = ?",
                (pid, port, socket, log_path, name, version),
            )

    def set_health(
        self,
        name: str,
        version: str,
        healthy: bool,
        *,
        event: tuple[str, str] | None = None,
        restarted: bool = False,
    ) -> None:
        """Record a version's health (and optionally an event: (kind, message))."""
        with self.transaction() as db:
            db.execute(
                "UPDATE versions SET healthy = ?, restarts = restarts + ? WHERE endpoint = ? "
                "AND name = ?",
                (int(healthy), int(restarted), name, version),
            )
            if event is not None:
                self.record(db, name, event[0], event[1], version=version)

    def settle(self, name: str, generation: int) -> bool:
        """Creating/Updating -> InService if nothing changed since `generation` was read."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE endpoints SET status = ?, updated_at = ? WHERE name = ? AND "
                "generation = ? AND status IN (?, ?)",
                (
                    Status.IN_SERVICE.value,
                    time.time(),
                    name,
                    generation,
                    Status.CREATING.value,
                    Status.UPDATING.value,
                ),
            )
            return cursor.rowcount > 0

    def finish_delete(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM endpoints WHERE name = ?", (name,))
            self.record(db, name, "deleted", "endpoint deleted")

    def set_gateway(
        self, *, pid: int | None, host: str | None, port: int | None, secret: str | None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO gateway (id, pid, host, port, secret, started_at, ready) "
                "VALUES (1, ?, ?, ?, ?, ?, 0) ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, "
                "host = excluded.host, port = excluded.port, secret = excluded.secret, "
                "started_at = excluded.started_at, ready = 0",
                (pid, host, port, secret, time.time()),
            )

    def set_gateway_ready(self, pid: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE gateway SET ready = 1 WHERE id = 1 AND pid = ?", (pid,))

    def gateway_died(self, pid: int) -> bool:
        """The daemon `pid` died without clearing its record: clear it, mark every version
        down, and say so in each endpoint's history. False if another caller already did."""
        with self.transaction() as db:
            gone = db.execute(
                "UPDATE gateway SET pid = NULL, secret = NULL, ready = 0 WHERE id = 1 AND pid = ?",
                (pid,),
            ).rowcount
            if not gone:
                return False
            db.execute("UPDATE versions SET pid = NULL, port = NULL, socket = NULL, healthy = 0")
            for (name,) in db.execute("SELECT name FROM endpoints").fetchall():
                self.record(
                    db,
                    name,
                    "health",
                    f"the gateway (pid {pid}) died without stopping; its versions are down "
                    "until it is started again (done now, by the command that read state)",
                )
        return True

    def clear_gateway(self, pid: int) -> None:
        """The daemon `pid` is exiting: keep its port (reused next start), drop the rest."""
        with self.transaction() as db:
            db.execute(
                "UPDATE gateway SET pid = NULL, secret = NULL, ready = 0 WHERE id = 1 AND pid = ?",
                (pid,),
            )
            db.execute("UPDATE versions SET pid = NULL, port = NULL, socket = NULL, healthy = 0")
