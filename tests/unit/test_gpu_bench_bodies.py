"""The GPU benchmark's request bodies and answer decoding (benchmarks/gpu/bodies.py), checked
against the serving server's own codecs, and its ratios against the goals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.gpu import bodies
from endpointkit.serving import codecs

IDS = np.arange(2 * 128).reshape(2, 128) % 30522


def test_json_body_is_the_instances_the_server_decodes() -> None:
    req = bodies.request("json", IDS)
    assert req.path == "/invocations"
    assert req.headers["Content-Type"] == codecs.JSON
    assert codecs.decode(req.body, codecs.JSON) == {"instances": IDS.tolist()}


def test_npy_body_is_a_float32_array_the_server_decodes() -> None:
    req = bodies.request("npy", IDS)
    assert req.headers == {"Content-Type": codecs.NPY, "Accept": codecs.NPY}
    got = codecs.decode(req.body, codecs.NPY)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, IDS)


def test_oip_body_has_a_json_head_and_the_raw_tensor() -> None:
    req = bodies.request("oip", IDS)
    assert req.path == "/v2/models/model/infer"
    n = int(req.headers["Inference-Header-Content-Length"])
    head = json.loads(req.body[:n])
    tensor = head["inputs"][0]
    assert tensor["shape"] == [2, 128]
    assert tensor["datatype"] == "FP32"
    assert head["parameters"] == {"binary_data_output": True}
    raw = req.body[n:]
    assert tensor["parameters"]["binary_data_size"] == len(raw) == 2 * 128 * 4
    np.testing.assert_array_equal(np.frombuffer(raw, np.float32).reshape(2, 128), IDS)


def test_decode_reads_each_kind_of_answer() -> None:
    out = np.linspace(-1, 1, 2 * 384, dtype=np.float32).reshape(2, 384)
    as_json = codecs.encode({"predictions": out}, codecs.JSON)
    np.testing.assert_array_equal(bodies.decode("json", as_json, {}), out)
    as_npy = codecs.encode(out, codecs.NPY)
    np.testing.assert_array_equal(bodies.decode("npy", as_npy, {}), out)
    raw = out.tobytes()
    tensor = {
        "name": "output-0",
        "datatype": "FP32",
        "shape": [2, 384],
        "parameters": {"binary_data_size": len(raw)},
    }
    head = json.dumps({"model_name": "model", "outputs": [tensor]}).encode()
    headers = {"Inference-Header-Content-Length": str(len(head))}
    np.testing.assert_array_equal(bodies.decode("oip", head + raw, headers), out)


def test_decode_rejects_a_truncated_binary_answer_and_a_wrong_shape() -> None:
    raw = np.zeros((1, 4), np.float32).tobytes()
    tensor = {"datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": len(raw)}}
    head = json.dumps({"outputs": [tensor]}).encode()
    headers = {"inference-header-content-length": str(len(head))}
    with pytest.raises(ValueError, match="binary output"):
        bodies.decode("oip", head + raw[:-4], headers)
    with pytest.raises(ValueError, match="shape"):
        bodies.decode("json", b'{"predictions": [1.0, 2.0]}', {})


def test_ratios_take_batched_rows_against_their_goal() -> None:
    served = [
        {"mode": "json", "workers": 1, "batched": False, "rps": 600.0},
        {"mode": "json", "workers": 4, "batched": True, "rps": 24000.0},
        {"mode": "npy", "workers": 4, "batched": True, "rps": 25000.0},
        {"mode": "oip", "workers": 4, "batched": True, "rps": 27000.0},
    ]
    got = bodies.ratios(28000.0, served)
    assert [(r["mode"], r["goal"], r["met"]) for r in got] == [
        ("json", 0.8, True),
        ("npy", 0.9, False),
        ("oip", 0.9, True),
    ]
    assert got[0]["ratio"] == pytest.approx(24000 / 28000)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        bodies.request("csv", IDS)
