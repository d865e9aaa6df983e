"""The op written as a gather over windows and compiled with ``torch.compile`` (inductor).

Written eagerly, ``x_padded[:, t + j]`` would materialise a [B, T, K, C] tensor of windows, as
``unfold`` does. Inductor instead fuses the gather, the multiply and the sum over taps into one
loop nest that reads x and the taps once and writes y once, so the forward runs near the memory
floor. The backward is the same formulation's vector-Jacobian product (``torch.func.vjp``),
compiled and fused the same way.

B, T and K are marked dynamic: one compilation serves every batch size, sequence length and
trimmed kernel width (about 20 s on a 2-core CPU for forward and backward, once per process;
inductor's on-disk cache shortens it in later processes). ``padding_l`` becomes dynamic after
its first change. C and H stay static, so the loops over channels are vectorised.
Half-precision inputs are computed in float32.
"""

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def windowed_sum(x: torch.Tensor, weight: torch.Tensor, padding_l: int) -> torch.Tensor:
    """y[b, t, c] = sum_j weight[b, t, c // R, j] * x_padded[b, t + j, c]; x [B, T, C], weight [B, T, H, K]."""
    B, T, C = x.shape
    H, K = weight.shape[2], weight.shape[3]
    x_padded = F.pad(x, (0, 0, padding_l, K - 1 - padding_l))
    rows = torch.arange(T, device=x.device)[:, None] + torch.arange(K, device=x.device)  # [T, K]: t + j
    windows = x_padded[:, rows].view(B, T, K, H, C // H)
    return (windows * weight.transpose(2, 3).unsqueeze(-1)).sum(2).reshape(B, T, C)


def windowed_sum_vjp(grad_y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, padding_l: int):
    """Gradients (grad_x [B, T, C], grad_weight [B, T, H, K]) of :func:`windowed_sum` from grad_y [B, T, C]."""
    _, pullback = torch.func.vjp(lambda x, weight: windowed_sum(x, weight, padding_l), x, weight)
    return pullback(grad_y)


# Compiled lazily, at their first calls. The backward is compiled as a function of its own rather
# than by AOTAutograd, so that only x and the taps are saved for it, and backward(retain_graph=True)
# works (AOTAutograd's donated buffers forbid it).
_compiled_forward = torch.compile(windowed_sum)
_compiled_backward = torch.compile(windowed_sum_vjp)


def _mark_dynamic(*tensors: torch.Tensor) -> None:
    """B, T (and K of the taps) vary from call to call: compile for any value, not one per shape."""
    for tensor in tensors:
        torch._dynamo.maybe_mark_dynamic(tensor, 0)
        torch._dynamo.maybe_mark_dynamic(tensor, 1)
        if tensor.dim() == 4:
            torch._dynamo.maybe_mark_dynamic(tensor, 3)


class _CompiledDynamicConv1d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, padding_l):
        ctx.save_for_backward(x, weight)
        ctx.padding_l = padding_l
        _mark_dynamic(x, weight)
        return _compiled_forward(x, weight, padding_l)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        grad_y = grad_y.contiguous()
        _mark_dynamic(grad_y, x, weight)
        with torch.autocast(x.device.type, enabled=False):  # backward runs under the caller's autocast
            grad_x, grad_w = _compiled_backward(grad_y, x, weight, ctx.padding_l)
        return grad_x, grad_w, None


def dynamic_conv1d_compiled(x: torch.Tensor, weight: torch.Tensor, padding_l: int) -> torch.Tensor:
    """Same contract as :func:`dynconv_nlp.ops.naive.dynamic_conv1d_naive`; x [B, T, C], weight [B, T, H, K].

    Not twice differentiable (the backward is one compiled kernel).
    """
    dtype = x.dtype
    compute = torch.promote_types(dtype, torch.float32)
    x, weight = x.to(compute).contiguous(), weight.to(compute).contiguous()
    if torch.compiler.is_compiling():
        # Inside a compiled model the outer graph takes the plain formulation in and differentiates it.
        return windowed_sum(x, weight, padding_l).to(dtype)
    return _CompiledDynamicConv1d.apply(x, weight, padding_l).to(dtype)
