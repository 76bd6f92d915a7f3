"""Build the serving image on this machine with podman, offline, from a Debian base made here.

    python containers/local.py check     # can this machine run containers at all? (exit 0/1)
    python containers/local.py base      # debootstrap bookworm (minbase + python3) -> podman
    python containers/local.py wheels    # pip download the wheelhouse (containers/wheelhouse/)
    python containers/local.py build     # podman build containers/Dockerfile from both
    python containers/local.py all       # base (if missing), wheels, build
    python containers/local.py lock      # rewrite containers/constraints.txt (fresh resolve)

`nox -s container` runs `all` and then the contract tests in tests/container/. The image is
`localhost/endpointkit-serve:sklearn` (EXTRAS=serve,sklearn,grpc). Podman reads
containers/podman/containers.conf (CONTAINERS_CONF): runc, no ulimit changes, host network.

Reproducible: the base is an input (built once per machine, then reused); given the same base,
the same sources and containers/constraints.txt, `build` gives the same image (layer file
times and the created time are set to the last commit's time, bytecode is hash-based).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WHEELHOUSE = HERE / "wheelhouse"
CONSTRAINTS = HERE / "constraints.txt"
CONF = HERE / "podman" / "containers.conf"

BASE_TAG = "localhost/endpointkit-base:bookworm"
IMAGE_TAG = "localhost/endpointkit-serve:sklearn"
EXTRAS = "serve,sklearn,grpc"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# python3-venv brings ensurepip's wheels, which the Dockerfile's `python3 -m venv` needs.
BASE_PACKAGES = "python3,python3-venv"
BUILD_REQUIREMENTS = "hatchling>=1.24"  # pyproject.toml's build backend, for offline builds


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONF)}


def podman(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    """Run ``podman ARGS`` with this project's containers.conf."""
    return subprocess.run(
        ["podman", *args],
        env=podman_env(),
        check=check,
        text=True,
        capture_output=capture,
    )


def log(msg: str) -> None:
    print(f"[container] {msg}", flush=True)


def image_exists(tag: str) -> bool:
    if shutil.which("podman") is None:
        return False
    return podman("image", "exists", tag, check=False).returncode == 0


def check() -> str | None:
    """None if podman can run a container here, else the reason it cannot."""
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc)"
    # A trivial image: the host's /bin/true and the libraries it loads.
    true = Path(shutil.which("true") or "/bin/true").resolve()
    libs = re.findall(
        r"(/\S+\.so[.\d]*)",
        subprocess.run(["ldd", str(true)], capture_output=True, text=True).stdout,
    )
    tag = "localhost/endpointkit-check:latest"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for path in [str(true), *libs]:
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(path).resolve(), target)
        imported = subprocess.run(
            ["podman", "import", "-q", "-", tag],
            input=subprocess.run(["tar", "-C", tmp, "-c", "."], capture_output=True).stdout,
            env=podman_env(),
            capture_output=True,
        )
        if imported.returncode != 0:
            return f"podman import failed: {imported.stderr.decode(errors='replace').strip()}"
    out = podman("run", "--rm", tag, str(true), check=False, capture=True)
    podman("rmi", "-f", tag, check=False, capture=True)
    if out.returncode != 0:
        return f"podman run of a trivial image failed: {(out.stderr or out.stdout).strip()}"
    return None


def build_base(force: bool = False) -> None:
    """debootstrap Debian bookworm (minbase + python3 + venv) and import it into podman."""
    if image_exists(BASE_TAG) and not force:
        log(f"base {BASE_TAG} exists (--force to rebuild)")
        return
    if shutil.which("debootstrap") is None:
        raise SystemExit("debootstrap is not installed (apt-get install debootstrap)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="endpointkit-base-") as tmp:
        root = Path(tmp, "rootfs")
        log(f"debootstrap {SUITE} minbase + {BASE_PACKAGES} from {MIRROR} (1-2 min)")
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                SUITE,
                str(root),
                MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # What Debian's slim images leave out too: package caches, logs, docs, man pages, locales.
        for pattern in (
            "var/cache/apt/*.bin",
            "var/cache/apt/archives/*.deb",
            "var/lib/apt/lists/*",
            "var/log/*",
            "usr/share/doc/*",
            "usr/share/man/*",
            "usr/share/info/*",
            "usr/share/locale/*",
        ):
            for path in root.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.name != "partial":
                    path.unlink()
        (root / "etc/dpkg/dpkg.cfg.d/01-slim").write_text(
            "path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\n"
            "path-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\n"
        )
        tar = subprocess.run(
            ["tar", "--numeric-owner", "-C", str(root), "-c", "."],
            capture_output=True,
            check=True,
        )
        subprocess.run(
            ["podman", "import", "-q", "--change", 'CMD ["/bin/bash"]', "-", BASE_TAG],
            input=tar.stdout,
            env=podman_env(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    log(f"base {BASE_TAG} built in {time.monotonic() - started:.0f} s")


def fetch_wheels(extras: str = EXTRAS) -> None:
    """pip download every wheel the image needs (and the build backend) into the wheelhouse."""
    WHEELHOUSE.mkdir(exist_ok=True)
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--dest",
            str(WHEELHOUSE),
            "--constraint",
            str(CONSTRAINTS),
            f"{ROOT}[{extras}]",
            BUILD_REQUIREMENTS,
        ],
        check=True,
        cwd=ROOT,
    )
    log(f"wheelhouse ready in {time.monotonic() - started:.0f} s ({WHEELHOUSE})")


def lock(extras: str = EXTRAS) -> None:
    """Resolve afresh (no constraints) and write the pinned versions to constraints.txt."""
    from packaging.utils import parse_wheel_filename

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--dest",
                tmp,
                f"{ROOT}[{extras}]",
                BUILD_REQUIREMENTS,
            ],
            check=True,
        )
        pins = sorted(
            f"{name}=={version}"
            for name, version, _, _ in (
                parse_wheel_filename(p.name) for p in Path(tmp).glob("*.whl")
            )
        )
    head = CONSTRAINTS.read_text().splitlines()[:2]
    CONSTRAINTS.write_text("\n".join([*head, *pins]) + "\n")
    log(f"{len(pins)} pins written to {CONSTRAINTS}")


def source_date_epoch() -> int:
    """The last commit's time: every layer's file times and the image's created time."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        return int(os.environ["SOURCE_DATE_EPOCH"])
    out = subprocess.run(
        ["git", "log", "-1", "--format=%ct"], cwd=ROOT, capture_output=True, text=True
    )
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else 0


def build(tag: str = IMAGE_TAG, extras: str = EXTRAS, *, no_cache: bool = False) -> str:
    """podman build containers/Dockerfile on the local base; returns the image id."""
    if not any(WHEELHOUSE.glob("*.whl")):
        raise SystemExit(f"no wheels in {WHEELHOUSE}: run `python containers/local.py wheels`")
    started = time.monotonic()
    args = [
        "build",
        "--file",
        str(HERE / "Dockerfile"),
        "--ignorefile",
        str(HERE / "Dockerfile.dockerignore"),
        "--build-arg",
        f"BASE_IMAGE={BASE_TAG}",
        "--build-arg",
        f"EXTRAS={extras}",
        "--timestamp",
        str(source_date_epoch()),
        "--pull=never",
        "--network=host",
        "--tag",
        tag,
    ]
    if no_cache:
        args.append("--no-cache")
    podman(*args, str(ROOT))
    image_id = podman("image", "inspect", "--format", "{{.Id}}", tag, capture=True).stdout.strip()
    log(f"built {tag} ({image_id[:12]}) in {time.monotonic() - started:.0f} s")
    return image_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=["check", "base", "wheels", "build", "all", "lock"])
    parser.add_argument("--force", action="store_true", help="rebuild the base even if present")
    parser.add_argument("--no-cache", action="store_true", help="podman build --no-cache")
    parser.add_argument("--tag", default=IMAGE_TAG)
    args = parser.parse_args(argv)
    if args.step == "check":
        reason = check()
        print(reason or "podman can run containers here")
        return 1 if reason else 0
    if args.step in ("base", "all"):
        build_base(force=args.force)
    if args.step in ("wheels", "all"):
        fetch_wheels()
    if args.step in ("build", "all"):
        build(args.tag, no_cache=args.no_cache)
    if args.step == "lock":
        lock()
    return 0


if __name__ == "__main__":
    sys.exit(main())
