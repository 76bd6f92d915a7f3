"""`endpointkit local status|stop [--output json]`: inspect or stop the local gateway."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx

from endpointkit.adapters.local import _aws
from endpointkit.adapters.local.state import Store, default_home
from endpointkit.retry import poll_until

__all__ = ["main", "pid_alive"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="endpointkit local",
        description="Inspect or stop the local backend's gateway, or show its AWS access key.",
    )
    parser.add_argument("action", choices=("status", "stop", "credentials"))
    parser.add_argument("endpoint", nargs="?", help="status: show only this endpoint")
    parser.add_argument(
        "--home",
        help="state folder (default ENDPOINTKIT_HOME, a project's .endpointkit, or "
        "~/.local/state/endpointkit)",
    )
    parser.add_argument("--output", "-o", choices=("text", "json"), default=None)
    parser.add_argument("--timeout", type=float, default=30.0, help="stop: seconds to wait")
    return parser


def _live_status(store: Store) -> dict[str, Any] | None:
    row = store.gateway()
    if row.pid is None or row.url is None or row.secret is None:
        return None
    try:
        answer = httpx.post(
            f"{row.url}/-/status", headers={"x-endpointkit-secret": row.secret}, timeout=5.0
        )
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    data: dict[str, Any] = answer.json()
    return data


def status(home: Path, endpoint: str | None, output: str) -> int:
    store = Store(home)
    try:
        live = _live_status(store)
        endpoints = {row.name: row for row in store.endpoints()}
    finally:
        store.close()
    names = [endpoint] if endpoint else sorted(endpoints)
    report: dict[str, Any] = {
        "home": str(home),
        "gateway": None
        if live is None
        else {
            k: live.get(k)
            for k in ("pid", "url", "host", "port", "grpc_port", "uptime_s", "ready", "auth")
        },
        "endpoints": {},
    }
    for name in names:
        row = endpoints.get(name)
        if row is None:
            report["endpoints"][name] = None
            continue
        routed = (live or {}).get("endpoints", {}).get(name, {}).get("versions", {})
        report["endpoints"][name] = {
            "status": row.status.value,
            "traffic": dict(row.traffic.root),
            "shadow": row.shadow.model_dump() if row.shadow else None,
            "failure_reason": row.failure_reason,
            "versions": {
                v.name: {
                    "phase": v.phase,
                    "traffic": row.traffic[v.name],
                    **{k: routed.get(v.name, {}).get(k) for k in ("healthy", "served", "errors")},
                    "shadowed": routed.get(v.name, {}).get("shadowed"),
                    "pid": v.pid,
                    "port": v.port,
                    "socket": v.socket,
                    "restarts": v.restarts,
                    "log": v.log_path,
                }
                for v in row.versions
            },
        }
    if output == "json":
        print(json.dumps(report, indent=2, default=str))
        return 0
    if live is None:
        print(f"gateway: not running (state in {home})")
    else:
        grpc = f"  grpc {live['host']}:{live['grpc_port']}" if live.get("grpc_port") else ""
        print(f"gateway: {live['url']}{grpc}  pid {live['pid']}  up {live['uptime_s']} s")
    for name, info in report["endpoints"].items():
        if info is None:
            print(f"\n{name}: not found")
            continue
        print(f"\n{name}: {info['status']}")
        if info["failure_reason"]:
            print(f"  last failure: {info['failure_reason'].splitlines()[0]}")
        for vname, v in info["versions"].items():
            health = "healthy" if v["healthy"] else "down" if v["healthy"] is False else "-"
            print(
                f"  {vname:<12} {v['traffic']:>3}%  {v['phase']:<9} {health:<8} "
                f"served {v['served'] or 0:<6} pid {v['pid'] or '-':<7} at "
                f"{v['socket'] or v['port'] or '-'}"
            )
    return 0


def stop(home: Path, output: str, timeout: float) -> int:
    store = Store(home)
    try:
        row = store.gateway()
        pid = row.pid
        stopped = False
        if pid is not None and row.url and row.secret:
            try:
                httpx.post(
                    f"{row.url}/-/stop", headers={"x-endpointkit-secret": row.secret}, timeout=5.0
                )
            except httpx.HTTPError:
                _signal(pid, signal.SIGTERM)
            try:
                poll_until(
                    lambda: _alive(pid),
                    lambda alive: not alive,
                    timeout=timeout,
                    expired=lambda _: TimeoutError(),
                    first_s=0.05,
                    max_s=0.05,
                )
            except TimeoutError:
                _signal(pid, signal.SIGKILL)
            stopped = True
    finally:
        store.close()
    if output == "json":
        print(json.dumps({"stopped": stopped, "pid": pid}))
    elif output == "quiet":
        pass
    else:
        print(f"gateway pid {pid} stopped." if stopped else "no gateway was running.")
    return 0


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (a zombie included: cheap, no /proc read)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    return _alive(pid)


def _alive(pid: int) -> bool:
    if not pid_alive(pid):
        return False
    try:  # a zombie (our own child, in tests) counts as gone
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def credentials(home: Path, output: str) -> int:
    """Show the AWS access key boto3 signs with for this state folder (made on first use)."""
    found = _aws.load_credentials(home)
    assert found is not None  # created when missing
    path = home / _aws.CREDENTIALS_FILE
    if output == "json":
        print(
            json.dumps(
                {
                    "aws_access_key_id": found.access_key_id,
                    "aws_secret_access_key": found.secret_access_key,
                    "file": str(path),
                    "profile": _aws.PROFILE,
                }
            )
        )
    else:
        print(f"aws_access_key_id = {found.access_key_id}")
        print(f"aws_secret_access_key = {found.secret_access_key}")
        print(
            f"# boto3: AWS_SHARED_CREDENTIALS_FILE={path} with profile_name={_aws.PROFILE!r},"
            "\n# or pass both keys to boto3.client('sagemaker-runtime', endpoint_url=...)."
        )
    return 0


def main(argv: list[str]) -> int:
    """Entry point for `endpointkit local ...`; returns the exit code."""
    args = _parser().parse_args(argv)
    home = Path(args.home).absolute() if args.home else default_home()
    output = str(args.output or os.environ.get("ENDPOINTKIT_OUTPUT") or "text")
    if args.action == "credentials":
        return credentials(home, output)
    if not (home / "state.db").exists():  # read-only commands never create a state folder
        if output == "json":
            empty: dict[str, Any] = {"home": str(home), "gateway": None, "endpoints": {}}
            print(json.dumps(empty if args.action == "status" else {"stopped": False, "pid": None}))
        else:
            print(f"no local state in {home} (set ENDPOINTKIT_HOME or --home to look elsewhere).")
        return 0
    if args.action == "status":
        return status(home, args.endpoint, output)
    return stop(home, output, args.timeout)
