"""Local versions from an image: find a container engine that works (podman, else docker) and
start, stop and remove a version's container the way SageMaker runs the image (`<image> serve`,
the model read-only at `/opt/ml/model`).

The container listens on a Unix socket, like a process version, so the gateway reaches it the
same way and its token still guards every way in: the container has no network
(`--network none`), and its socket lies in a folder of its own (0700, this user's) inside the
version-socket folder (also 0700), bind-mounted at `/run/endpointkit`. The container runs as
this user (`--user UID:GID`; rootless podman also `--userns keep-id`, so that UID is this
user's on the host too), so it can create its socket there, reads the model with this user's
permissions, and no other host user gains a way in. The image must therefore be the endpointkit
serving image or one built on it: the server is told where to listen by `ENDPOINTKIT_UDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENGINES",
    "Engine",
    "NoEngine",
    "container_name",
    "find_engine",
    "image_problem",
    "remove",
    "run_args",
]

#: Tried in this order; the first whose `version` command succeeds is used.
ENGINES = ("podman", "docker")
#: Seconds `<engine> version` may take (a docker client waiting on an absent daemon fails fast).
PROBE_TIMEOUT_S = 30.0
#: Where the socket folder is mounted inside the container.
SOCKET_MOUNT = "/run/endpointkit"
MODEL_MOUNT = "/opt/ml/model"
#: An image reference: [registry[:port]/]path[:tag][@digest], no spaces, not an option.
IMAGE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$")


class NoEngine(Exception):
    """No container engine works here; the message says what was tried and what to do."""


@dataclass(frozen=True)
class Engine:
    """A container engine client that answered `version`."""

    name: str  # "podman" or "docker"
    path: str

    @property
    def rootless(self) -> bool:
        """Rootless podman (a non-root user's): container UIDs are mapped, see run_args."""
        return self.name == "podman" and os.geteuid() != 0


_found: dict[str, Engine] = {}


def find_engine() -> Engine:
    """The first of podman, docker on PATH that works (its `version` command succeeds: a client
    whose daemon is not running does not count). Remembered per PATH. Raises NoEngine naming
    both and why each was passed over."""
    search = os.environ.get("PATH", os.defpath)
    if search in _found:
        return _found[search]
    tried = []
    for name in ENGINES:
        path = shutil.which(name, path=search)
        if path is None:
            tried.append(f"{name}: not found on PATH")
            continue
        try:
            probe = subprocess.run(
                [path, "version"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{name} ({path}): {exc}")
            continue
        if probe.returncode == 0:
            _found[search] = Engine(name, path)
            return _found[search]
        last = (probe.stderr.strip() or probe.stdout.strip()).splitlines()[-1:] or ["no output"]
        tried.append(f"{name} ({path}): `{name} version` failed ({last[0]})")
    raise NoEngine(
        "a version with an image runs in a container, and neither podman nor docker works "
        f"here ({'; '.join(tried)}). Install podman or docker (and start the docker daemon), "
        "or remove `image` to run the version as a local process"
    )


def image_problem(image: str, model: str | None) -> str | None:
    """Why a local version cannot run from `image` with `model` (None if it can)."""
    if not IMAGE_REF.match(image):
        return (
            f"image {image!r} is not an image reference (like 'localhost/endpointkit-serve:cpu' "
            "or 'registry.example.com/team/serve@sha256:...'; no spaces, no leading '-')"
        )
    if model is not None and model.startswith(("s3://", "gs://")):
        return (
            f"a local version from an image reads its model from a local folder, and {model!r} "
            "is remote (the container has no network): download it to a folder first"
        )
    return None


def container_name(endpoint: str, version: str, token: str) -> str:
    """`ek-<endpoint>-<version>-<token>`: one name per container, a restart gets a new one."""
    return f"ek-{endpoint}-{version}-{token}"


def run_args(
    engine: Engine,
    *,
    name: str,
    image: str,
    socket_folder: Path,
    model_dir: str,
    env: dict[str, str],
    labels: dict[str, str],
) -> list[str]:
    """The `<engine> run` command line of one version container (attached: the engine client
    forwards SIGTERM to the server and exits with its code; its output is the version's log)."""
    args = [engine.path, "run", "--rm", "--name", name, "--network", "none"]
    args += ["--user", f"{os.geteuid()}:{os.getegid()}"]
    if engine.rootless:
        args += ["--userns", "keep-id"]
    args += ["--volume", f"{socket_folder}:{SOCKET_MOUNT}"]
    args += ["--volume", f"{model_dir}:{MODEL_MOUNT}:ro"]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    return [*args, image, "serve"]


async def remove(engine: Engine, name: str, socket_folder: Path | None) -> None:
    """Force-remove the container `name` (a no-op if `--rm` already did) and its socket
    folder. Needed whenever the engine client was killed rather than left to exit: the
    container outlives its client."""
    with contextlib.suppress(OSError):
        wait = ["--time", "0"] if engine.name == "podman" else []  # docker's -f is a SIGKILL
        proc = await asyncio.create_subprocess_exec(
            engine.path,
            "rm",
            "--force",
            *wait,
            name,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
    if socket_folder is not None:
        shutil.rmtree(socket_folder, ignore_errors=True)
