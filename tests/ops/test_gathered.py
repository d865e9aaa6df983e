"""gathered_conv (a list of taps, for trim="token"'s wide tokens) equals its plain formulation."""

import torch

from dynconv_nlp.ops.gathered import gathered_conv, gathered_conv_reference


def _inputs(N=12, C=8, H=2, E=30, n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, C, generator=g, dtype=torch.float64, requires_grad=True)
    rows = torch.randint(0, N, (E,), generator=g)  # repeated rows and targets: gradients add up
    targets = torch.randint(0, n, (E,), generator=g)
    weight = torch.randn(E, H, generator=g, dtype=torch.float64, requires_grad=True)
    return x, rows, targets, weight, n


def test_outputs_and_gradients_equal_the_reference():
    x, rows, targets, weight, n = _inputs()
    probe = torch.randn(n, x.shape[1], dtype=torch.float64)
    results = []
    for op in (gathered_conv, gathered_conv_reference):
        y = op(x, rows, targets, weight, n)
        results.append((y, *torch.autograd.grad((y * probe).sum(), (x, weight))))
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected)


def test_gradcheck():
    x, rows, targets, weight, n = _inputs(N=6, C=4, E=9, n=3)
    assert torch.autograd.gradcheck(lambda x, w: gathered_conv(x, rows, targets, w, n), (x, weight))


def test_no_taps_give_zeros():
    x, _, _, _, _ = _inputs()
    empty = torch.zeros(0, dtype=torch.long)
    assert torch.equal(gathered_conv(x, empty, empty, torch.zeros(0, 2, dtype=torch.float64), 3), torch.zeros(3, 8, dtype=torch.float64))
