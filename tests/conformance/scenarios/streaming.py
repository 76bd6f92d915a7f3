"""Response streaming: items arrive as they are made; failures before and during a stream."""

from __future__ import annotations

import json

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.base import Backend, Capability
from endpointkit.errors import ModelError, Unsupported
from tests.conformance.scenarios.base import SuiteBase, Versions, lacks, needs
from tests.streams import assert_streamed, body, timed_frames


class StreamingScenarios(SuiteBase):
    @needs(Capability.STREAMING)
    def test_invoke_stream(self, endpoint: Endpoint) -> None:
        request = body([[1.0], [2.0], [3.0], [4.0]], gap_s=0.15)
        expected = [{"index": i, "prediction": "v1"} for i in range(4)]
        with endpoint.invoke_stream(request) as stream:
            assert stream.version == "v1"
            assert stream.content_type.startswith("text/event-stream")
            frames = timed_frames(stream)
        assert [f for _, f in frames] == expected
        assert_streamed([t for t, _ in frames], 0.15)  # each item arrived as it was made
        with endpoint.invoke_stream(request, accept="application/jsonlines") as stream:
            assert [f for _, f in timed_frames(stream, sse=False)] == expected
        # Without a streaming Accept the whole answer comes, as from invoke.
        whole = endpoint.invoke_stream(body([[1.0], [2.0]]), accept="application/json").read()
        assert json.loads(whole) == {"predictions": ["v1", "v1"]}

    @needs(Capability.STREAMING)
    def test_invoke_stream_failures(self, endpoint: Endpoint, versions: Versions) -> None:
        # A failure mid-stream raises from the iteration, after the items before it.
        with endpoint.invoke_stream(body([[1.0], "boom"])) as stream:
            got: list[bytes] = []
            with pytest.raises(ModelError):
                got.extend(stream)  # keeps what arrived before the failure
        assert b'"index":0' in b"".join(got)
        # A failure before the first item is the model's ordinary error, status and all.
        endpoint.deploy(versions.rejecting("v2"), traffic=100, timeout=120)
        with pytest.raises(ModelError) as caught:
            endpoint.invoke_stream(body([[1.0]]))
        assert caught.value.status is not None
        assert 400 <= caught.value.status < 500
        assert "rejects every input" in caught.value.body_excerpt
        endpoint.promote("v1", timeout=120)
        assert endpoint.invoke_stream(body([[1.0]])).version == "v1"  # still serving

    @lacks(Capability.STREAMING)
    def test_invoke_stream_is_unsupported(self, endpoint: Endpoint, backend: Backend) -> None:
        request = body([[1.0], [2.0], [3.0], [4.0]], gap_s=0.15)
        with pytest.raises(Unsupported, match=backend.name):
            endpoint.invoke_stream(request)
        assert endpoint.predict([[1.0]]).predictions == ["v1"]  # plain invocations still work
