"""The benchmark's model: a small text encoder (token ids in, one mean-pooled vector out).

Imports torch at the top: import this module only once torch is known to be there. No
``from __future__ import annotations`` here: TorchScript reads the annotations.
"""

import torch
from torch import nn


class Encoder(nn.Module):
    """Embedding + learned positions, pre-norm transformer blocks, final norm, mean pooling.

    Takes token ids as float32 (what ``TorchScriptPredictor`` feeds: ``float32`` arrays) of shape
    (batch, tokens) and answers float32 (batch, d_model), whatever the weights' dtype.
    """

    def __init__(self, vocab: int, d_model: int, heads: int, ff: int, layers: int, tokens: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(torch.randn(tokens, d_model) * 0.02)
        block = nn.TransformerEncoderLayer(
            d_model, heads, ff, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(
            block, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(batch, tokens) ids -> (batch, d_model) float32."""
        x = self.embed(ids.long()) + self.pos
        out: torch.Tensor = self.blocks(x).mean(dim=1).float()
        return out


def save(
    path: str,
    *,
    vocab: int,
    d_model: int,
    heads: int,
    ff: int,
    layers: int,
    tokens: int,
    half: bool,
    seed: int = 18,
) -> None:
    """Build the encoder from ``seed`` (CPU, so the weights do not depend on the device),
    fp16 if ``half``, script it and save it as TorchScript at ``path``."""
    torch.manual_seed(seed)
    model = Encoder(vocab, d_model, heads, ff, layers, tokens).eval()
    if half:
        model = model.half()
    scripted = torch.jit.script(model)
    scripted.save(path)  # type: ignore[no-untyped-call]
