"""fairseq's ``_forward_unfolded``: materialise every token's window, then one batched matmul.

Kept as the baseline that the fast paths must beat. Memory is O(B * T * C * K).
Half-precision inputs are computed in float32, as by the reference.
"""

import torch
import torch.nn.functional as F


def dynamic_conv1d_unfold(x: torch.Tensor, weight: torch.Tensor, padding_l: int) -> torch.Tensor:
    """Same contract as :func:`dynconv_nlp.ops.naive.dynamic_conv1d_naive`.

    Args:
        x: [B, T, C]; weight: [B, T, H, K]; padding_l: 0 <= padding_l < K.

    Returns:
        [B, T, C].
    """
    B, T, C = x.shape
    H, K = weight.shape[2], weight.shape[3]
    R = C // H
    dtype = x.dtype
    compute = torch.promote_types(dtype, torch.float32)
    x, weight = x.to(compute), weight.to(compute)
    x_padded = F.pad(x, (0, 0, padding_l, K - 1 - padding_l))
    # [B, T, C, K] view of overlapping windows; reshape copies it, as fairseq's unfold1d does.
    windows = x_padded.unfold(1, K, 1).reshape(B * T * H, R, K)
    y = torch.bmm(windows, weight.reshape(B * T * H, K, 1))
    return y.reshape(B, T, C).to(dtype)
