"""The dynamic convolution as a list of taps: for the few tokens whose taps the op does not cover.

``trim="token"`` convolves every token with the taps most tokens need (the op) and gives the few
wide tokens their farther taps here, each exactly as many as it needs: tap e adds
``weight[e, h] * x[rows[e]]`` (per head h) to output ``targets[e]``.

Autograd through an indexed gather scatters its gradient with an accumulating ``index_put`` (slow
on the CPU); this backward adds it back with ``index_add_``.
"""

import torch


def gathered_conv_reference(x: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, n: int):
    """The plain formulation, which :func:`gathered_conv` must equal (outputs and gradients).

    Args:
        x: [N, C] rows (the tokens of all sequences, flattened).
        rows: [E] int64, the row of x each tap reads.
        targets: [E] int64 in [0, n), the output each tap adds to.
        weight: [E, H] each tap's weight per head (R = C // H channels share a head).
        n: outputs.

    Returns:
        [n, C].
    """
    E, H = weight.shape
    taps = x[rows].view(E, H, x.shape[1] // H) * weight.unsqueeze(-1)
    return x.new_zeros(n, H, x.shape[1] // H).index_add(0, targets, taps).view(n, -1)


class _GatheredConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, rows, targets, weight, n):
        ctx.save_for_backward(x, rows, targets, weight)
        E, H = weight.shape
        taps = x.index_select(0, rows).view(E, H, x.shape[1] // H) * weight.unsqueeze(-1)
        return x.new_zeros(n, H, x.shape[1] // H).index_add_(0, targets, taps).view(n, -1)

    @staticmethod
    def backward(ctx, grad_y):
        x, rows, targets, weight = ctx.saved_tensors
        E, H = weight.shape
        grad_taps = grad_y.index_select(0, targets).view(E, H, x.shape[1] // H)  # [E, H, R]
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.zeros_like(x).index_add_(0, rows, (grad_taps * weight.unsqueeze(-1)).view(E, x.shape[1]))
        if ctx.needs_input_grad[3]:
            grad_weight = (grad_taps * x.index_select(0, rows).view(E, H, x.shape[1] // H)).sum(-1)
        return grad_x, None, None, grad_weight, None


def gathered_conv(x: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, n: int) -> torch.Tensor:
    """Same contract as :func:`gathered_conv_reference`: x [N, C], rows and targets [E], weight [E, H] -> [n, C]."""
    return _GatheredConv.apply(x, rows, targets, weight.to(x.dtype), n)
