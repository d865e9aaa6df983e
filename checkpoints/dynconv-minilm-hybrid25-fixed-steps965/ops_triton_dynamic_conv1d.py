"""Triton kernels for the dynamic convolution, forward and backward.

``y[b, t, c] = sum_j weight[b, t, c // R, j] * x[b, t + j - padding_l, c]`` with x = 0 outside
[0, T), for x [B, T, C] and weight [B, T, H, K], R = C // H channels per head.

Every program owns one (batch, head) pair, a tile of BLOCK_T tokens and a block of BLOCK_R of the
head's channels, and loops over the K taps. Two things keep that loop short:

* taps that cannot reach the sequence from this tile (zero padding) are not visited at all;
* a tap whose weights are all exactly zero on the tile is skipped before x is loaded (in the kernel
  gradient only when the caller declares zero taps inactive, as the layer does). Kernels of
  narrow learned width are zero outside their window, so most taps of a wide K cost only the load
  of BLOCK_T weights. A skipped tap contributes nothing, even where x is inf or NaN.

Accumulation is in float32 (float64 for float64 inputs); results are cast to the input dtype.
On the CPU the kernels run in Triton's interpreter, which needs ``TRITON_INTERPRET=1`` in the
environment before this module is imported.
"""

import contextlib
import os

import torch
from torch.autograd.function import once_differentiable

try:
    import triton
    import triton.language as tl
except ImportError as error:
    raise ImportError(
        "the triton backend needs triton: pip install triton (or the extra: pip install 'dynconv_nlp[triton]')"
    ) from error

# Tokens per tile. The interpreter runs the programs one after another, each in numpy, so fewer
# tiles are faster there; 32 still splits the 64-token test sequences into two tiles.
_GPU_BLOCK_T = 64
_INTERPRETER_BLOCK_T = 32
# Channels per program: a whole head up to this size, several programs per head above it.
_MAX_BLOCK_R = 64


@triton.jit
def _forward_kernel(
    x_ptr, w_ptr, y_ptr, T, C, H, K, R, padding_l, ACC: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_R: tl.constexpr
):
    """x [B, T, C], w [B, T, H, K] -> y [B, T, C]; grid (B * H, cdiv(T, BLOCK_T), cdiv(R, BLOCK_R))."""
    pid_bh = tl.program_id(0).to(tl.int64)  # int64 offsets: B * T * C may pass 2**31
    b, h = pid_bh // H, pid_bh % H
    t0 = tl.program_id(1).to(tl.int64) * BLOCK_T
    t = t0 + tl.arange(0, BLOCK_T)
    c = h * R + tl.program_id(2) * BLOCK_R + tl.arange(0, BLOCK_R)
    c_ok = c < (h + 1) * R
    x_batch = x_ptr + b * T * C
    w_rows = w_ptr + (b * T + t) * H * K + h * K  # tap 0 of head h for each token of the tile

    acc = tl.zeros([BLOCK_T, BLOCK_R], dtype=ACC)
    # Tap j reads tokens t0 + j - padding_l ... t_last + j - padding_l; visit only the taps for
    # which that range meets [0, T).
    t_last = tl.minimum(t0 + BLOCK_T, T) - 1
    j_first = tl.maximum(padding_l - t_last, 0)
    j_end = tl.minimum(T + padding_l - t0, K)
    for j in range(j_first, j_end):
        w = tl.load(w_rows + j, mask=t < T, other=0.0).to(ACC)
        # Load x only if some weight of the tap is nonzero on this tile (NaN counts as nonzero).
        if tl.sum((w != 0).to(tl.int32), axis=0) > 0:
            s = t + j - padding_l
            s_ok = (s >= 0) & (s < T)
            xs = tl.load(x_batch + s[:, None] * C + c[None, :], mask=s_ok[:, None] & c_ok[None, :], other=0.0)
            acc += w[:, None] * xs.to(ACC)
    y_mask = (t < T)[:, None] & c_ok[None, :]
    tl.store(y_ptr + b * T * C + t[:, None] * C + c[None, :], acc.to(y_ptr.dtype.element_ty), mask=y_mask)


@triton.jit
def _grad_x_kernel(
    gy_ptr, w_ptr, gx_ptr, T, C, H, K, R, padding_l, ACC: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_R: tl.constexpr
):
    """grad_x[b, s, c] = sum_j w[b, u, h, j] * grad_y[b, u, c] with u = s - j + padding_l.

    gy = grad_y [B, T, C], w [B, T, H, K] -> gx = grad_x [B, T, C]; grid as the forward, tiles over s.
    """
    pid_bh = tl.program_id(0).to(tl.int64)  # int64 offsets: B * T * C may pass 2**31
    b, h = pid_bh // H, pid_bh % H
    s0 = tl.program_id(1).to(tl.int64) * BLOCK_T
    s = s0 + tl.arange(0, BLOCK_T)
    c = h * R + tl.program_id(2) * BLOCK_R + tl.arange(0, BLOCK_R)
    c_ok = c < (h + 1) * R
    gy_batch = gy_ptr + b * T * C
    w_batch = w_ptr + b * T * H * K + h * K

    acc = tl.zeros([BLOCK_T, BLOCK_R], dtype=ACC)
    # Tap j gathers from source tokens u = s - j + padding_l; visit only taps whose u range meets [0, T).
    s_last = tl.minimum(s0 + BLOCK_T, T) - 1
    j_first = tl.maximum(s0 + padding_l - T + 1, 0)
    j_end = tl.minimum(s_last + padding_l + 1, K)
    for j in range(j_first, j_end):
        u = s - j + padding_l
        u_ok = (u >= 0) & (u < T)
        w = tl.load(w_batch + u * H * K + j, mask=u_ok, other=0.0).to(ACC)
        if tl.sum((w != 0).to(tl.int32), axis=0) > 0:  # as in the forward: skip all-zero taps
            gy = tl.load(gy_batch + u[:, None] * C + c[None, :], mask=u_ok[:, None] & c_ok[None, :], other=0.0)
            acc += w[:, None] * gy.to(ACC)
    gx_mask = (s < T)[:, None] & c_ok[None, :]
    tl.store(gx_ptr + b * T * C + s[:, None] * C + c[None, :], acc.to(gx_ptr.dtype.element_ty), mask=gx_mask)


@triton.jit
def _grad_weight_kernel(
    gy_ptr, x_ptr, w_ptr, gw_ptr, T, C, H, K, R, padding_l,
    ACC: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_R: tl.constexpr, SKIP_ZERO_TAPS: tl.constexpr,
):
    """grad_w[b, t, h, j] = sum_{c in head h} grad_y[b, t, c] * x[b, t + j - padding_l, c].

    gy = grad_y [B, T, C], x [B, T, C], w [B, T, H, K] -> gw = grad_w [B, T, H, K]; grid (B * H, cdiv(T, BLOCK_T)).
    gw must arrive zeroed: taps that cannot reach the sequence from a tile are not written, nor, with
    SKIP_ZERO_TAPS, taps whose weights are all zero on the tile.
    """
    pid_bh = tl.program_id(0).to(tl.int64)  # int64 offsets: B * T * C may pass 2**31
    b, h = pid_bh // H, pid_bh % H
    t0 = tl.program_id(1).to(tl.int64) * BLOCK_T
    t = t0 + tl.arange(0, BLOCK_T)
    t_ok = t < T
    gy_rows = gy_ptr + b * T * C + t * C
    x_batch = x_ptr + b * T * C
    w_rows = w_ptr + (b * T + t) * H * K + h * K
    gw_rows = gw_ptr + (b * T + t) * H * K + h * K

    # A zero weight still has a gradient, so zero taps are skipped only when the caller declares
    # them inactive (SKIP_ZERO_TAPS); the padding taps always are.
    t_last = tl.minimum(t0 + BLOCK_T, T) - 1
    j_first = tl.maximum(padding_l - t_last, 0)
    j_end = tl.minimum(T + padding_l - t0, K)
    for j in range(j_first, j_end):
        active = True
        if SKIP_ZERO_TAPS:
            w = tl.load(w_rows + j, mask=t_ok, other=0.0)
            active = tl.sum((w != 0).to(tl.int32), axis=0) > 0
        if active:
            s = t + j - padding_l
            s_ok = (s >= 0) & (s < T)
            acc = tl.zeros([BLOCK_T], dtype=ACC)
            # Reduce over the head's channels one block at a time, so any R fits.
            for r0 in range(0, R, BLOCK_R):
                c = h * R + r0 + tl.arange(0, BLOCK_R)
                c_ok = c < (h + 1) * R
                gy = tl.load(gy_rows[:, None] + c[None, :], mask=t_ok[:, None] & c_ok[None, :], other=0.0)
                xs = tl.load(x_batch + s[:, None] * C + c[None, :], mask=s_ok[:, None] & c_ok[None, :], other=0.0)
                acc += tl.sum(gy.to(ACC) * xs.to(ACC), axis=1)
            tl.store(gw_rows + j, acc.to(gw_ptr.dtype.element_ty), mask=t_ok)


def _launch_config(x: torch.Tensor, weight: torch.Tensor) -> tuple[tuple, dict]:
    """The grid (B * H, token tiles, channel blocks) and the kernel arguments that follow the tensors."""
    B, T, C = x.shape
    H, K = weight.shape[2], weight.shape[3]
    R = C // H
    interpreting = x.device.type == "cpu"
    block_t = _INTERPRETER_BLOCK_T if interpreting else min(_GPU_BLOCK_T, max(16, triton.next_power_of_2(T)))
    block_r = min(_MAX_BLOCK_R, triton.next_power_of_2(R))
    grid = (B * H, triton.cdiv(T, block_t), triton.cdiv(R, block_r))
    acc = tl.float64 if x.dtype == torch.float64 else tl.float32
    return grid, dict(T=T, C=C, H=H, K=K, R=R, ACC=acc, BLOCK_T=block_t, BLOCK_R=block_r)


def _forward(x: torch.Tensor, weight: torch.Tensor, padding_l: int) -> torch.Tensor:
    grid, config = _launch_config(x, weight)
    y = torch.empty_like(x)
    _forward_kernel[grid](x, weight, y, padding_l=padding_l, **config)
    return y


def _grad_x(grad_y: torch.Tensor, weight: torch.Tensor, padding_l: int) -> torch.Tensor:
    grid, config = _launch_config(grad_y, weight)
    grad_x = torch.empty_like(grad_y)
    _grad_x_kernel[grid](grad_y, weight, grad_x, padding_l=padding_l, **config)
    return grad_x


def _grad_weight(grad_y, x, weight, padding_l: int, skip_zero_taps: bool) -> torch.Tensor:
    grid, config = _launch_config(x, weight)
    grad_w = torch.zeros_like(weight)
    # One program per (batch, head, token tile): it reduces over all of the head's channels itself.
    _grad_weight_kernel[grid[:2]](
        grad_y, x, weight, grad_w, padding_l=padding_l, SKIP_ZERO_TAPS=skip_zero_taps, **config
    )
    return grad_w


def _device_guard(t: torch.Tensor):
    """Triton launches on the current CUDA device: make it t's."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


class _DynamicConv1dTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, padding_l, zero_taps_inactive):
        ctx.save_for_backward(x, weight)
        ctx.padding_l, ctx.zero_taps_inactive = padding_l, zero_taps_inactive
        return _forward(x, weight, padding_l)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        grad_y = grad_y.contiguous()
        with _device_guard(x):
            grad_x = _grad_x(grad_y, weight, ctx.padding_l) if ctx.needs_input_grad[0] else None
            grad_w = (
                _grad_weight(grad_y, x, weight, ctx.padding_l, ctx.zero_taps_inactive)
                if ctx.needs_input_grad[1]
                else None
            )
        return grad_x, grad_w, None, None


def dynamic_conv1d_triton(
    x: torch.Tensor, weight: torch.Tensor, padding_l: int, zero_taps_inactive: bool = False
) -> torch.Tensor:
    """x [B, T, C], weight [B, T, H, K] -> y [B, T, C] in x's dtype, differentiable in x and weight.

    Inputs are assumed checked by :func:`dynconv_nlp.ops.dispatch.check_inputs`. Runs on CUDA, or
    on the CPU under ``TRITON_INTERPRET=1`` (slow: for tests). With ``zero_taps_inactive``, a tap
    whose weights are all zero on a tile of tokens gets a zero gradient there without being computed.
    """
    if x.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(
            "the triton backend needs a CUDA device, or TRITON_INTERPRET=1 to run on the CPU; "
            "use backend='band' or 'auto' on the CPU"
        )
    x, weight = x.contiguous(), weight.contiguous()
    with _device_guard(x):
        return _DynamicConv1dTriton.apply(x, weight, padding_l, zero_taps_inactive)
