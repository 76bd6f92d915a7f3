#!/usr/bin/env bash
# Prepare and run `python -m benchmarks gpu` on a GPU machine that has no network
# (issue 18 item 7; how-to in benchmarks/serving/README.md, "GPU benchmark").
#
#   bash benchmarks/gpu_setup.sh pack          # here, with PyPI and wrk: fill .gpu/ (git-ignored)
#   bash benchmarks/gpu_setup.sh run [ARGS]    # there, in the repo root: unpack .gpu/, check
#                                              # torch + CUDA, run the benchmark with ARGS
#
# The GPU machine must already have Python with torch built for CUDA (and numpy, httpx): this
# script installs no torch. `pack` downloads wheels of what the server needs beyond that
# (pydantic, orjson, uvicorn, httptools, ...) for that machine's Python (PY_VERSION, default
# 3.12; versions from this checkout's .venv) and copies wrk and its LuaJIT library.
# `run` exits non-zero with a message when torch or CUDA is missing (unless --device cpu is
# among ARGS). PYTHON picks the interpreter (default python3).
set -euo pipefail

cd "$(dirname "$0")/.."
PACK=.gpu
PYTHON=${PYTHON:-python3}
# what the server imports that a CUDA image with torch may lack (typing-extensions: pydantic
# needs a recent one)
WHEELS="pydantic pydantic-core annotated-types typing-inspection typing-extensions tenacity
orjson uvicorn httptools h11 click PyYAML"

pack() {
    local venv_py=.venv/bin/python py=${PY_VERSION:-3.12} name version exclude
    [ -x "$venv_py" ] || { echo "pack: no .venv here (uv venv .venv && uv pip install -e '.[dev]')" >&2; exit 2; }
    exclude="$(git rev-parse --git-common-dir)/info/exclude"
    grep -qx "/$PACK/" "$exclude" 2>/dev/null || echo "/$PACK/" >>"$exclude"
    rm -rf "$PACK" && mkdir -p "$PACK/whl" "$PACK/bin" "$PACK/lib"
    for name in $WHEELS; do
        version=$("$venv_py" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" \
            --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d "$PACK/whl" "$name==$version"
    done
    local wrk lib
    wrk=$(command -v wrk) || { echo "pack: wrk is not installed here (apt-get install -y wrk)" >&2; exit 2; }
    cp "$wrk" "$PACK/bin/wrk"
    lib=$(ldd "$wrk" | awk '/libluajit/ {print $3}')
    [ -n "$lib" ] && cp -L "$lib" "$PACK/lib/"
    du -sh "$PACK"
    echo "packed $PACK/: carry it to the GPU machine, then: bash benchmarks/gpu_setup.sh run"
}

run() {
    local cpu=0 arg
    for arg in "$@"; do case "$arg" in cpu | --device=cpu) cpu=1 ;; esac; done
    if [ -d "$PACK/whl" ] && ls "$PACK"/whl/*.whl >/dev/null 2>&1; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/ek-gpu-site "$PACK"/whl/*.whl
        export PYTHONPATH="/tmp/ek-gpu-site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    if [ -x "$PACK/bin/wrk" ]; then
        export PATH="$PWD/$PACK/bin:$PATH"
        export LD_LIBRARY_PATH="$PWD/$PACK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
    command -v wrk >/dev/null || { echo "run: no wrk (run 'pack' where wrk is installed, carry .gpu/)" >&2; exit 2; }
    "$PYTHON" -c "import torch" 2>/dev/null || {
        echo "run: $PYTHON has no torch; install torch (built for CUDA) into it first" >&2; exit 3; }
    if [ "$cpu" = 0 ]; then
        "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" || {
            echo "run: torch $("$PYTHON" -c 'import torch; print(torch.__version__)') sees no CUDA device;" \
                 "a GPU run needs torch built for CUDA and a GPU (or pass --device cpu)" >&2; exit 3; }
    fi
    "$PYTHON" -c "import endpointkit.serving.app, uvicorn, httptools, orjson, pydantic, httpx, numpy" || {
        echo "run: the server's packages are missing (see above); run 'pack' and carry .gpu/" >&2; exit 2; }
    export PYTHONUNBUFFERED=1
    exec "$PYTHON" -m benchmarks gpu "$@"
}

case "${1:-}" in
    pack) shift; pack "$@" ;;
    run) shift; run "$@" ;;
    *) echo "usage: bash benchmarks/gpu_setup.sh pack | run [ARGS for python -m benchmarks gpu]" >&2; exit 2 ;;
esac
