# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quickstart: a canary rollout on the local backend
#
# This notebook runs on your own machine, with no cloud account: the **local** backend starts
# the same serving server as the container, one process per version, behind a gateway that
# splits traffic. It
#
# 1. trains two iris classifiers (scikit-learn, a few seconds) and a third, broken one;
# 2. creates an endpoint serving `v1`, and keeps sending it requests from a background thread,
#    timing each one;
# 3. rolls `v2` out as a **canary** (20% of traffic, then 100%) with a **gate**: probe requests to
#    the new version must all succeed, fast;
# 4. tries to roll out the broken `v3` the same way: its gate fails, traffic goes back to `v2`
#    and the rollout raises `RolledBack`;
# 5. plots each version's traffic share (from `ep.history()`) and latency (from the request
#    timings) over time.
#
# Everything lives in a temporary folder (the local backend's `home`), and the last cell
# deletes the endpoint and stops the local gateway. Install what it needs with
# `pip install 'endpointkit[serve,sklearn]' matplotlib`.

# %%
import sys
import tempfile
import threading
import time
from pathlib import Path

import matplotlib.pyplot as plt

import endpointkit as ek

# The quickstart example's training code (examples/quickstart/train.py).
sys.path.insert(0, str(Path.cwd().parent / "quickstart"))
from train import train

workdir = Path(tempfile.mkdtemp(prefix="endpointkit-notebook-"))
backend = ek.get_backend("local", {"home": str(workdir / "home")})
backend

# %% [markdown]
# ## Three model versions
#
# `train()` fits a logistic regression (`v1`) and a small random forest (`v2`) and saves each as
# `model.joblib` in its own folder, which the serving server recognises as a scikit-learn model.
# `v3` is the mistake we want a gate to catch: a model fitted on two features, which fails on
# every four-feature request.

# %%
for version, accuracy in train(workdir / "models").items():
    print(f"{version}: held-out accuracy {accuracy:.3f}")

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

features, labels = load_iris(return_X_y=True)
(workdir / "models" / "v3").mkdir()
joblib.dump(
    LogisticRegression(max_iter=500).fit(features[:, :2], labels),
    workdir / "models" / "v3" / "model.joblib",
)


def version(name: str) -> ek.VersionSpec:
    return ek.VersionSpec(name=name, model=str(workdir / "models" / name))


# %% [markdown]
# ## An endpoint serving v1
#
# `Endpoint.create` returns once the endpoint is InService: the version's process answered its
# health check and the gateway routes to it.

# %%
started = time.perf_counter()
ep = ek.Endpoint.create("iris", version("v1"), backend=backend)
print(f"InService in {time.perf_counter() - started:.1f} s")
ep.status()

# %% [markdown]
# ## Traffic while we change things
#
# A background thread plays the part of the application: it calls `ep.predict` in a loop and
# records, for each request, when it started, how long it took and which version answered
# (`Prediction.version`).

# %%
ROW = [5.9, 3.0, 5.1, 1.8]
timings: list[tuple[float, float, str | None, bool]] = []  # (t, latency ms, version, ok)
stop = threading.Event()
t0 = time.time()


def client() -> None:
    caller = ek.Endpoint("iris", backend)
    while not stop.is_set():
        began = time.perf_counter()
        try:
            answered, ok = caller.predict([ROW]).version, True
        except ek.EndpointKitError:
            answered, ok = None, False
        timings.append((time.time() - t0, 1000 * (time.perf_counter() - began), answered, ok))
        stop.wait(0.01)


load = threading.Thread(target=client, daemon=True)
load.start()
time.sleep(2)
print(f"{len(timings)} requests so far")

# %% [markdown]
# ## Canary: v2 at 20%, then 100%, behind a gate
#
# `Canary(percent=20, bake_s=4)` deploys `v2`, gives it 20% of the traffic, watches the gates
# for 4 seconds, then moves the rest and watches again. The gate sends `probe` requests to the
# new version every second: more than 0% errors, or a p99 latency over 500 ms, would roll it
# back. (Real bake times are minutes; these are short so the notebook runs in seconds.)

# %%
gates = ek.Gates(
    probe=[ROW], probes_per_check=5, max_error_rate=0.0, max_p99_latency_ms=500, check_interval_s=1
)
result = ep.rollout(version("v2"), ek.Canary(percent=20, bake_s=4, gates=gates), on_step=print)
result

# %% [markdown]
# ## A rollout the gate stops
#
# `v3` deploys fine (its process loads the model and answers health checks), but every
# prediction fails. The first probe check sees a 100% error rate: the controller puts the split
# back to where it was, removes `v3` and raises `RolledBack`.

# %%
time.sleep(2)
try:
    ep.rollout(version("v3"), ek.Canary(percent=20, bake_s=4, gates=gates), on_step=print)
except ek.RolledBack as exc:
    print(f"RolledBack: {exc.reason}")
time.sleep(2)
stop.set()
load.join()
ep.status()

# %% [markdown]
# ## The history
#
# Every change is an event, with the split before and after; it renders as a table.

# %%
history = ep.history()
history

# %% [markdown]
# ## Traffic share and latency per version, over time
#
# The top plot draws the split each version was given (a step line from `ep.history()`'s
# `traffic_after`) and the share of requests it actually answered (dots, per second, from the
# background thread's records); dotted lines mark deploys and undeploys. The bottom plot is
# every request's latency, coloured by the version that answered it; requests that reached
# `v3` during its brief 20% (if any did) failed, and are the red crosses.

# %%
from collections import Counter, defaultdict

start = history[0].time.timestamp()
offset = t0 - start  # history times are wall clock; timings are seconds since t0
versions = ["v1", "v2", "v3"]
colors = {"v1": "tab:blue", "v2": "tab:orange", "v3": "tab:red"}

fig, (share_ax, latency_ax) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)

# assigned share: a step function per version from the history's traffic changes
assigned: dict[str, list[tuple[float, int]]] = defaultdict(list)
for event in history:
    if event.traffic_after is None:
        continue
    at = event.time.timestamp() - start
    for name in versions:
        assigned[name].append((at, event.traffic_after.get(name, 0)))
end = max(t for t, *_ in timings) + offset
for name in versions:
    points = assigned[name] + [(end, assigned[name][-1][1])] if assigned[name] else []
    if points and any(p for _, p in points):
        xs, ys = zip(*points, strict=True)
        share_ax.step(xs, ys, where="post", color=colors[name], label=f"{name} split")

# observed share: who answered, per one-second bucket
per_second: dict[int, Counter[str]] = defaultdict(Counter)
for t, _, answered, ok in timings:
    if ok and answered:
        per_second[int(t + offset)][answered] += 1
for name in versions:
    xs = sorted(per_second)
    ys = [100 * per_second[s][name] / max(1, sum(per_second[s].values())) for s in xs]
    if any(ys):
        share_ax.plot([x + 0.5 for x in xs], ys, "o", ms=3, color=colors[name], alpha=0.6)
share_ax.set_ylabel("traffic share (%)")
share_ax.set_ylim(-5, 105)
share_ax.legend(loc="center right")

# deploys and undeploys, from the history too (events a second apart share one label)
marks: list[tuple[float, str]] = []
for event in history:
    if event.kind in ("deployed", "undeployed") and event.version != "v1":
        at, label = event.time.timestamp() - start, f"{event.kind} {event.version}"
        if marks and at - marks[-1][0] < 2:
            marks[-1] = (marks[-1][0], f"{marks[-1][1]}, {label}")
        else:
            marks.append((at, label))
for at, label in marks:
    for ax in (share_ax, latency_ax):
        ax.axvline(at, color="grey", lw=0.8, ls=":")
    share_ax.text(
        at,
        1.02,
        label,
        transform=share_ax.get_xaxis_transform(),
        fontsize=8,
        ha="center",
        va="bottom",
    )

for name in versions:
    xs = [t + offset for t, _, v, ok in timings if ok and v == name]
    ys = [ms for _, ms, v, ok in timings if ok and v == name]
    if xs:
        latency_ax.plot(xs, ys, ".", ms=3, color=colors[name], label=name)
failed = [(t + offset, ms) for t, ms, _, ok in timings if not ok]
if failed:
    latency_ax.plot(*zip(*failed, strict=True), "x", color="red", label="failed")
latency_ax.set_yscale("log")
latency_ax.set_ylabel("latency (ms)")
latency_ax.set_xlabel("seconds since the endpoint was created")
latency_ax.legend(loc="upper right")
fig.tight_layout()
plt.show()

# %% [markdown]
# Per version, over the whole run:

# %%
import statistics

for name in versions:
    ms = sorted(m for _, m, v, ok in timings if ok and v == name)
    if ms:
        p99 = ms[max(0, int(0.99 * len(ms)) - 1)]
        print(
            f"{name}: {len(ms):4d} requests, p50 {statistics.median(ms):6.1f} ms, p99 {p99:6.1f} ms"
        )
print(f"failed: {sum(1 for *_, ok in timings if not ok)}")

# %% [markdown]
# ## Clean up
#
# Delete the endpoint (its version processes stop) and stop the local gateway, as
# `endpointkit local stop` would.

# %%
import shutil

ep.delete()
if not backend.list_endpoints():
    backend.stop_gateway()
shutil.rmtree(workdir, ignore_errors=True)
print("endpoint deleted, gateway stopped")
