"""Extents and taps for timing the layer and the op as trained models would run them.

A trained model's extents vary per token and head; uniform extents would flatter or punish trimming.
``learned_looking_*`` draw such extents around a chosen mean width; :func:`learned_extents` replays
those a model really learned (exported by ``benchmarks/width/benchmark_width.py --export_extents``).
"""

import json
from pathlib import Path

import torch


def side_maxima(kernel_size: int, causal: bool) -> tuple[int, int]:
    """The most taps each side of a window of ``kernel_size`` taps reaches: (left, right)."""
    return (kernel_size - 1, 0) if causal else (kernel_size // 2, kernel_size - 1 - kernel_size // 2)


def learned_looking_extents(B, T, H, K, mean_width: float, causal: bool, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Extents (left, right) [B, T, H] that vary per token and head: each side's share of its maximum
    uniform in [0, 2 * mean_width], so that the mean width (l + r) / (K - 1) is ``mean_width``."""
    max_left, max_right = side_maxima(K, causal)
    left, right = (2 * mean_width * torch.rand(B, T, H, generator=generator) for _ in range(2))
    return left * max_left, right * max_right


def learned_looking_taps(B, T, H, K, mean_width: float, device, causal: bool, seed=0) -> torch.Tensor:
    """Taps [B, T, H, K] as the layer makes them: softmax over the window of extents that vary per
    token and head around ``mean_width`` of K - 1 (one share for both sides), zero outside it, so that
    whole tiles of a kernel can skip taps."""
    from dynconv_nlp.layers.dynamic_conv import ramp_mask

    g = torch.Generator().manual_seed(seed)
    max_left, max_right = side_maxima(K, causal)
    share = (2 * mean_width * torch.rand(B, T, H, generator=g)).clamp(0, 1)  # uniform with the given mean
    left, right = share * max_left, share * max_right
    mask = ramp_mask(left, right, K, max_left, 1.0)
    logits = torch.randn(B, T, H, K, generator=g)
    weight = torch.where(mask > 0, logits + mask.clamp_min(1e-30).log(), float("-inf")).softmax(-1)
    return weight.to(device)


def forced_extents(B, T, H, K, varied: bool, device, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Extents [B, T, H] with a mean width l + r of K / 4: all l = r = K / 8, or each uniform in [0, K / 4]."""
    if not varied:
        full = torch.full((B, T, H), K / 8, device=device)
        return full, full.clone()
    left, right = (torch.rand(B, T, H, generator=generator).to(device) * K / 4 for _ in range(2))
    return left, right


def learned_extents(path: Path, B: int, T: int, K: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's extents [B, T, H] (left, right) from a file of learned extents: its sentences one
    after another (from the first again when they run out), as shares of the side's maximum taps at
    kernel size K."""
    record = json.loads(path.read_text())
    max_left, max_right = side_maxima(K, record["causal"])
    layers = []
    for sentences in record["layers"]:
        tokens = [token for sentence in sentences for token in sentence]  # each [H][2]
        tokens = torch.tensor([tokens[i % len(tokens)] for i in range(B * T)]).view(B, T, -1, 2)
        layers.append((tokens[..., 0] * max_left, tokens[..., 1] * max_right))
    return layers
