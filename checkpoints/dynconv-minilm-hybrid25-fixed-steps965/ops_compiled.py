"""The op written as a gather over windows and compiled with ``torch.compile`` (inductor).

Written eagerly, ``x_padded[:, t + j]`` would materialise a [B, T, K, C] tensor of windows, as
``unfold`` does. Inductor instead fuses the gather, the multiply and the sum over taps into one
loop nest that reads x and the taps once and writes y once, so the forward runs near the memory
floor. The backward is written the same way (:func:`windowed_sum_backward`) and compiled too.

B, T and K are marked dynamic: one compilation serves every batch size, sequence length and
trimmed kernel width (seconds, once per process: the first call took 3.65 s on a 2-core CPU in
benchmarks/ops_cpu/results.md; inductor's on-disk cache shortens it in later processes). ``padding_l`` becomes dynamic after
its first change. C and H stay static, so the loops over channels are vectorised.
Half-precision inputs are computed in float32.
"""

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def _window_rows(T: int, K: int, device) -> torch.Tensor:
    """[T, K] row t + j of the padded input that tap j of token t reads."""
    return torch.arange(T, device=device)[:, None] + torch.arange(K, device=device)


def windowed_sum(x: torch.Tensor, weight: torch.Tensor, padding_l: int) -> torch.Tensor:
    """y[b, t, c] = sum_j weight[b, t, c // R, j] * x_padded[b, t + j, c]; x [B, T, C], weight [B, T, H, K]."""
    B, T, C = x.shape
    H, K = weight.shape[2], weight.shape[3]
    x_padded = F.pad(x, (0, 0, padding_l, K - 1 - padding_l))
    windows = x_padded[:, _window_rows(T, K, x.device)].view(B, T, K, H, C // H)
    return (windows * weight.transpose(2, 3).unsqueeze(-1)).sum(2).reshape(B, T, C)


def transposed_taps(weight: torch.Tensor, padding_l: int) -> torch.Tensor:
    """The taps [B, T, H, K] of the transposed convolution, which takes grad_y back to grad_x.

    y[t] reads x[t + j - P] with weight[t, j], so x[s] reaches y[s + P - j]; with i = K - 1 - j:
    ``transposed[s, i] = weight[s + i - (K - 1 - P), K - 1 - i]`` (0 outside the sequence), read
    with ``K - 1 - P`` taps to the left.
    """
    B, T, H, K = weight.shape
    left = K - 1 - padding_l
    padded = F.pad(weight, (0, 0, 0, 0, left, padding_l)).permute(0, 2, 1, 3)  # [B, H, T + K - 1, K]
    flipped = (K - 1 - torch.arange(K, device=weight.device)).expand(T, K)
    return padded[:, :, _window_rows(T, K, weight.device), flipped].permute(0, 2, 1, 3)


def windowed_sum_backward(grad_y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, padding_l: int):
    """Gradients (grad_x [B, T, C], grad_weight [B, T, H, K]) of :func:`windowed_sum` from grad_y [B, T, C].

    Both are gathers, like the forward: grad_x is the forward over grad_y with the transposed
    taps, and grad_weight[t, h, j] the dot product of grad_y[t] with tap j's window over the
    head's channels. (Differentiating the forward instead scatters into grad_x, which inductor
    runs 4x slower on two threads.)
    """
    B, T, C = x.shape
    H, K = weight.shape[2], weight.shape[3]
    grad_x = windowed_sum(grad_y, transposed_taps(weight, padding_l), K - 1 - padding_l)
    x_padded = F.pad(x, (0, 0, padding_l, K - 1 - padding_l))
    windows = x_padded[:, _window_rows(T, K, x.device)].view(B, T, K, H, C // H)
    grad_w = (windows * grad_y.view(B, T, 1, H, C // H)).sum(-1).transpose(2, 3)
    return grad_x, grad_w


# Compiled lazily, at their first calls. The backward is compiled as a function of its own rather
# than by AOTAutograd, so that only x and the taps are saved for it, and backward(retain_graph=True)
# works (AOTAutograd's donated buffers forbid it).
_compiled_forward = torch.compile(windowed_sum)
_compiled_backward = torch.compile(windowed_sum_backward)


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
