"""The quickstart: deploy v1, canary v2 at 20%, invoke, promote v2, undeploy v1.

Runs on the local backend by default (real serving processes on this machine, no cloud
account); `--backend mock` runs the same steps in-process.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from train import train  # noqa: E402

import endpointkit as ek  # noqa: E402
from endpointkit.render import event_message  # noqa: E402 - the wording every backend shares

SPECIES = ["setosa", "versicolor", "virginica"]


def step(text: str) -> float:
    print(f"\n==> {text}")
    return time.perf_counter()


def done(started: float) -> None:
    print(f"    done in {time.perf_counter() - started:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", help="override the spec's backend (local, mock, ...)")
    parser.add_argument("--requests", type=int, default=200, help="requests during the canary")
    parser.add_argument("--keep", action="store_true", help="leave the endpoint running")
    args = parser.parse_args(argv)

    if not (HERE / "models" / "v2" / "model.joblib").exists():
        started = step("training two iris models (scikit-learn, a few seconds)")
        for version, accuracy in train().items():
            print(f"    {version}: held-out accuracy {accuracy:.3f}")
        done(started)

    spec = ek.load_spec(HERE / "endpoint.yaml")
    if args.backend:
        spec = spec.model_copy(update={"backend": args.backend})
    backend = ek.get_backend(spec.backend, spec.settings)

    started = step(f"endpointkit apply endpoint.yaml (backend: {backend.name})")
    print(ek.plan(spec, backend).diff())
    ek.apply(spec, backend)
    done(started)

    endpoint = ek.Endpoint(spec.name, backend)
    v2 = ek.VersionSpec(name="v2", model=str(HERE / "models" / "v2"))
    started = step("canary: deploy v2 with 20% of traffic")
    state = endpoint.deploy(v2, traffic=20)
    print(f"    traffic: {state.traffic.serving()}")
    done(started)

    started = step(f"invoke {args.requests} times")
    rng = random.Random(0)
    served: Counter[str | None] = Counter()
    for _ in range(args.requests):
        row = [
            round(rng.uniform(4.3, 7.9), 1),
            round(rng.uniform(2.0, 4.4), 1),
            round(rng.uniform(1.0, 6.9), 1),
            round(rng.uniform(0.1, 2.5), 1),
        ]
        served[endpoint.predict([row]).version] += 1
    sample = endpoint.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    labels = [SPECIES[int(p)] for p in sample.predictions]
    print(f"    sample: {labels} (served by {sample.version})")
    for version, count in sorted(served.items(), key=lambda kv: str(kv[0])):
        print(f"    {version}: {count:4d} requests ({100 * count / args.requests:.0f}%)")
    done(started)

    started = step("promote v2 to 100%, then undeploy v1")
    endpoint.promote("v2")
    after = Counter(endpoint.predict([[5.9, 3.0, 5.1, 1.8]]).version for _ in range(20))
    print(f"    20 requests after promote: {dict(after)}")
    state = endpoint.undeploy("v1")
    print(f"    versions: {state.version_names}, traffic: {state.traffic.serving()}")
    done(started)

    print("\n==> history")
    for event in endpoint.history():
        print(
            f"    {event.time:%H:%M:%S}  {event.kind:<10} {event.version or '':<4} "
            f"{event_message(event)}"
        )

    if args.keep:
        print(f"\nThe endpoint is still running: try 'endpointkit status {spec.name}'.")
    else:
        ek.destroy(spec.name, backend)
        print(f"\nendpoint {spec.name} deleted (run with --keep to leave it running).")
        stop_gateway = getattr(backend, "stop_gateway", None)
        if stop_gateway is not None and not backend.list_endpoints():
            stop_gateway()  # the local backend's gateway: nothing else is using it
            print("local gateway stopped.")
    ok = served.get("v1", 0) > 0 and served.get("v2", 0) > 0 and set(after) == {"v2"}
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
