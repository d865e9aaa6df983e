"""K shifted fused multiply-adds with a hand-written backward.

Memory is O(B * T * C): no window is ever materialised. Each tap is one ``addcmul_`` over the
slice of tokens whose tap stays inside the sequence, so the zero padding costs nothing.
Accumulation is in float32 for half-precision inputs.
"""

import torch


def _tap_ranges(T: int, K: int, padding_l: int):
    """For every tap j: (j, first token t0, last token t1, shift s) with t + s inside [0, T) for t in [t0, t1)."""
    for j in range(K):
        shift = j - padding_l
        t0, t1 = max(0, -shift), min(T, T - shift)
        if t0 < t1:
            yield j, t0, t1, shift


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def shift_forward(x: torch.Tensor, weight: torch.Tensor, padding_l: int) -> torch.Tensor:
    """x [B, T, C], weight [B, T, H, K] -> y [B, T, C]."""
    B, T, C = x.shape
    H, K = weight.shape[2], weight.shape[3]
    xh = x.view(B, T, H, C // H)
    y = torch.zeros(B, T, H, C // H, dtype=_accumulation_dtype(x.dtype), device=x.device)
    for j, t0, t1, s in _tap_ranges(T, K, padding_l):
        y[:, t0:t1].addcmul_(xh[:, t0 + s : t1 + s], weight[:, t0:t1, :, j, None])
    return y.view(B, T, C).to(x.dtype)


def shift_backward(grad_y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, padding_l: int):
    """Gradients of :func:`shift_forward` w.r.t. x [B, T, C] and weight [B, T, H, K]."""
    B, T, C = x.shape
    H, K = weight.shape[2], weight.shape[3]
    acc = _accumulation_dtype(x.dtype)
    gyh = grad_y.reshape(B, T, H, C // H)
    xh = x.view(B, T, H, C // H)
    grad_x = torch.zeros(B, T, H, C // H, dtype=acc, device=x.device)
    grad_w = torch.zeros(B, T, H, K, dtype=acc, device=x.device)
    for j, t0, t1, s in _tap_ranges(T, K, padding_l):
        # y[t] reads x[t + s] with weight[t, j]: send the gradient back along the same edge.
        grad_x[:, t0 + s : t1 + s].addcmul_(gyh[:, t0:t1], weight[:, t0:t1, :, j, None])
        grad_w[:, t0:t1, :, j] = torch.linalg.vecdot(gyh[:, t0:t1].to(acc), xh[:, t0 + s : t1 + s].to(acc))
    return grad_x.view(B, T, C).to(x.dtype), grad_w.to(weight.dtype)


class _ShiftDynamicConv1d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, padding_l):
        ctx.save_for_backward(x, weight)
        ctx.padding_l = padding_l
        return shift_forward(x, weight, padding_l)

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        with torch.autocast(x.device.type, enabled=False):  # backward runs under the caller's autocast
            grad_x, grad_w = shift_backward(grad_y.contiguous(), x, weight, ctx.padding_l)
        return grad_x, grad_w, None


def dynamic_conv1d_shift(x: torch.Tensor, weight: torch.Tensor, padding_l: int) -> torch.Tensor:
    """Same contract as :func:`dynconv_nlp.ops.naive.dynamic_conv1d_naive`; x [B, T, C], weight [B, T, H, K]."""
    return _ShiftDynamicConv1d.apply(x.contiguous(), weight, padding_l)
