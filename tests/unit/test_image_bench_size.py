"""`python -m benchmarks image --size-only` rewrites only the size row and section of the
results file, and says that the other figures come from the earlier full run."""

from __future__ import annotations

from benchmarks.image import RESULTS, rewrite_size


def _after(text: str, marker: str) -> str:
    return text[text.index(marker) :]


def test_size_only_keeps_every_other_figure() -> None:
    before = RESULTS.read_text()
    lines = ["| base image (b) | 128 MB |", "| grpc | 12 MiB |"]
    after = rewrite_size(before, "img:tag", 412_300_000, lines)
    assert "| image size | 412 MB | < 450 MB | yes |" in after
    assert "| grpc | 12 MiB |" in after
    assert "Size re-measured" in after
    assert "`--size-only` (image `img:tag`" in after
    # Start-up, serving and the hand-written reading stay exactly as the full run wrote them.
    marker = "## Start-up"
    assert _after(after, marker) == _after(before, marker)
    start_row = next(x for x in before.splitlines() if x.startswith("| container start"))
    assert start_row in after
    # Rewriting again replaces the section instead of stacking a second one.
    again = rewrite_size(after, "img:tag", 460_000_000, lines[:1])
    assert again.count("## Size: what dominates") == 1
    assert again.count("Size re-measured") == 1
    assert "| grpc | 12 MiB |" not in again
    assert "| image size | 460 MB | < 450 MB | NO |" in again
