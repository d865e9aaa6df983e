"""The reference dynamic convolution: written to be read, not to be fast.

Every other backend is tested against this one, outputs and gradients.
"""

import torch
import torch.nn.functional as F


def dynamic_conv1d_naive(x: torch.Tensor, weight: torch.Tensor, padding_l: int) -> torch.Tensor:
    """y[b, t, c] = sum_j weight[b, t, c // R, j] * x[b, t + j - padding_l, c], zeros outside [0, T).

    Args:
        x: [B, T, C] inputs.
        weight: [B, T, H, K] taps of every token and head (R = C // H channels share a head).
        padding_l: number of taps that look to the left of the token, 0 <= padding_l < K.

    Returns:
        [B, T, C] in the dtype of ``x``; computed in float32 (float64 for float64 inputs).
    """
    B, T, C = x.shape
    H, K = weight.shape[2], weight.shape[3]
    compute = torch.promote_types(x.dtype, torch.float32)
    x32 = x.to(compute).reshape(B, T, H, C // H)
    w32 = weight.to(compute)
    # Zero-pad the time axis so that tap j of token t reads x_padded[t + j].
    x_padded = F.pad(x32, (0, 0, 0, 0, padding_l, K - 1 - padding_l))
    y = torch.zeros_like(x32)
    for j in range(K):
        y = y + w32[:, :, :, j, None] * x_padded[:, j : j + T]
    return y.reshape(B, T, C).to(x.dtype)
