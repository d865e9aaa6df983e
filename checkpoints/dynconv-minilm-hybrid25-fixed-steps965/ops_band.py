"""Blocked band-matrix GEMM: tokens in tiles of L, each tile one matmul against its window.

For a tile of L tokens and one head, the outputs are ``band [L, L + K - 1] @ window [L + K - 1, R]``
where row i of ``band`` holds token i's K taps starting at column i. The band is built by skewing
the padded taps (:func:`_band`), and the kernel gradient is read back through an ``as_strided``
view of the band's gradient (row stride L + K, so element (i, i + j) is tap j). A fraction
(L - 1) / (L + K - 1) of the band is zeros, so the matmuls waste that share of their multiply-adds,
but they run at GEMM speed instead of memory speed.
Half-precision inputs are computed in float32.
"""

import torch
import torch.nn.functional as F


def default_tile(kernel_size: int) -> int:
    """Tokens per tile: about K, so that the band is half full, and at least 32 for GEMM efficiency.

    Measured on a 2-core CPU (C = 512, H = 8): L = 32 beats 8, 16 and 64 for K in 3 ... 31.
    """
    return max(32, kernel_size)


def _band_view(buffer: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """[..., L, L + K - 1] contiguous buffer -> [..., L, K] view of its band (element (i, i + j))."""
    *batch, L, W = buffer.shape
    strides = buffer.stride()[:-2] + (W + 1, 1)
    return buffer.as_strided((*batch, L, kernel_size), strides)


def _windows(x: torch.Tensor, padding_l: int, K: int, H: int, L: int, n_tiles: int) -> torch.Tensor:
    """x [B, T, C] -> overlapping windows [B, n_tiles, H, L + K - 1, R] (a strided view)."""
    B, T, C = x.shape
    right = n_tiles * L - T + K - 1 - padding_l
    x_padded = F.pad(x, (0, 0, padding_l, right)).view(B, -1, H, C // H)
    return x_padded.unfold(1, L + K - 1, L).transpose(-1, -2)


def _tiles(t: torch.Tensor, L: int, n_tiles: int) -> torch.Tensor:
    """[B, T, H, D] -> [B, n_tiles, H, L, D], zero-padding T up to n_tiles * L."""
    B, T, H, D = t.shape
    t = F.pad(t, (0, 0, 0, 0, 0, n_tiles * L - T))
    return t.view(B, n_tiles, L, H, D).transpose(2, 3)


def _untile(t: torch.Tensor, T: int) -> torch.Tensor:
    """[B, n_tiles, H, L, D] -> [B, T, H, D]."""
    B, n, H, L, D = t.shape
    return t.transpose(2, 3).reshape(B, n * L, H, D)[:, :T]


def _band(weight: torch.Tensor, L: int, n_tiles: int) -> torch.Tensor:
    """weight [B, T, H, K] -> band matrices [B, n_tiles, H, L, L + K - 1].

    Skewed in one pass instead of zero-filling a buffer and copying the taps in: each row of K taps
    gets L zeros appended, and the padded rows, read back with a row length one shorter (L + K - 1),
    shift right by one column per row, so that row i holds its taps from column i and zeros elsewhere.
    """
    B, _, H, K = weight.shape
    W = L + K - 1
    padded = F.pad(_tiles(weight, L, n_tiles), (0, L)).flatten(-2)  # [B, n_tiles, H, L * (W + 1)]
    return padded[..., : L * W].view(B, n_tiles, H, L, W)


def band_tile_outputs(windows: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Each of N tiles on its own window: windows [N, H, L + K - 1, R], the taps of the tile's L
    tokens weight [N, L, H, K] -> outputs [N, H, L, R], one band matmul per tile and head. Plain
    tensor ops, so autograd differentiates it."""
    return _band(weight, weight.shape[1], 1).squeeze(1) @ windows


def band_forward(x: torch.Tensor, weight: torch.Tensor, padding_l: int, tile: int) -> torch.Tensor:
    """x [B, T, C], weight [B, T, H, K] (contiguous, same dtype) -> y [B, T, C], ``tile`` tokens per matmul."""
    B, T, C = x.shape
    H, K = weight.shape[2], weight.shape[3]
    n_tiles = -(-T // tile)
    y = _band(weight, tile, n_tiles) @ _windows(x, padding_l, K, H, tile, n_tiles)
    return _untile(y, T).reshape(B, T, C)


def band_backward(grad_y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, padding_l: int, tile: int):
    """Gradients of :func:`band_forward` w.r.t. x [B, T, C] and weight [B, T, H, K], from grad_y [B, T, C]."""
    B, T, C = x.shape
    H, K = weight.shape[2], weight.shape[3]
    L, W = tile, tile + K - 1
    n_tiles = -(-T // L)
    grad_tiles = _tiles(grad_y.view(B, T, H, C // H), L, n_tiles)  # [B, n, H, L, R]

    grad_band = grad_tiles @ _windows(x, padding_l, K, H, L, n_tiles).transpose(-1, -2)
    grad_w = _untile(_band_view(grad_band, K), T)

    # Each window overlaps the next ones: add its rows back tile by tile (overlap-add).
    grad_windows = (_band(weight, L, n_tiles).transpose(-1, -2) @ grad_tiles).transpose(2, 3)
    n_chunks = -(-W // L)
    grad_x = x.new_zeros(B, n_tiles + n_chunks - 1, L, H, C // H)
    for q in range(n_chunks):
        rows = min(L, W - q * L)
        grad_x[:, q : q + n_tiles, :rows] += grad_windows[:, :, q * L : q * L + rows]
    grad_x = grad_x.view(B, -1, C)[:, padding_l : padding_l + T]
    return grad_x, grad_w


class _BandDynamicConv1d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, padding_l, tile):
        ctx.save_for_backward(x, weight)
        ctx.padding_l, ctx.tile = padding_l, tile
        return band_forward(x, weight, padding_l, tile)

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        with torch.autocast(x.device.type, enabled=False):  # backward runs under the caller's autocast
            grad_x, grad_w = band_backward(grad_y.contiguous(), x, weight, ctx.padding_l, ctx.tile)
        return grad_x, grad_w, None, None


def dynamic_conv1d_band(x: torch.Tensor, weight: torch.Tensor, padding_l: int, tile: int | None = None) -> torch.Tensor:
    """Same contract as :func:`dynconv_nlp.ops.naive.dynamic_conv1d_naive`; x [B, T, C], weight [B, T, H, K].

    ``tile`` is the number of tokens per matmul (default :func:`default_tile`).
    """
    dtype = x.dtype
    compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    tile = tile or default_tile(weight.shape[-1])
    y = _BandDynamicConv1d.apply(x.to(compute).contiguous(), weight.to(compute).contiguous(), padding_l, tile)
    return y.to(dtype)
