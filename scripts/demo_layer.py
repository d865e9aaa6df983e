"""A small demo of the adaptive-width DynamicConv1d: learn how far each head must look.

The target at token t is the sum of the inputs at t + offset for each of the given offsets. One
layer, trained with MSE plus the width penalty, should learn a left extent close to
-min(offsets) and a right extent close to max(offsets), for every token and head: the context
the task needs and no more. (With ramp rho, taps up to extent + rho are partly on.)

    python scripts/demo_layer.py                      # settings from configs/demo_layer.yaml
    python scripts/demo_layer.py --steps 200 --offsets -4 0 1
"""

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from dynconv_nlp import DynamicConv1d
from dynconv_nlp.cli import ArgumentParser, exit_on_expected_errors

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo_layer.yaml"


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="YAML file of defaults")
    parser.add_argument("--hidden_size", type=int)
    parser.add_argument("--num_heads", type=int)
    parser.add_argument("--kernel_size", type=int)
    parser.add_argument("--offsets", type=int, nargs="+", help="the target at t sums the inputs at t + offset")
    parser.add_argument("--ramp", type=float)
    parser.add_argument("--width_penalty", type=float, help="coefficient of the width penalty")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch_size", type=int)
    parser.add_argument("--seq_len", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    if not args.config.is_file():
        parser.error(f"config file {args.config} does not exist")
    defaults = yaml.safe_load(args.config.read_text())
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    # A centred kernel reaches K // 2 taps to the left and K - 1 - K // 2 to the right.
    max_left, max_right = args.kernel_size // 2, args.kernel_size - 1 - args.kernel_size // 2
    if any(not -max_left <= o <= max_right for o in args.offsets):
        parser.error(f"--offsets must lie in [-{max_left}, {max_right}] for kernel_size {args.kernel_size}")
    return args


def make_batch(args, generator):
    """Inputs x [B, T, C] and targets [B, T, C] = sum over offsets of x shifted by the offset."""
    x = torch.randn(args.batch_size, args.seq_len, args.hidden_size, generator=generator)
    return x, sum(_shift(x, offset) for offset in args.offsets)


def _shift(x: torch.Tensor, offset: int) -> torch.Tensor:
    """out[:, t] = x[:, t + offset], zeros outside the sequence; x [B, T, C]."""
    T = x.shape[1]
    out = torch.zeros_like(x)
    if offset >= 0:
        out[:, : T - offset] = x[:, offset:]
    else:
        out[:, -offset:] = x[:, : T + offset]
    return out


@exit_on_expected_errors
def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    layer = DynamicConv1d(args.hidden_size, args.num_heads, args.kernel_size, ramp=args.ramp)
    optimizer = torch.optim.Adam(layer.parameters(), lr=args.lr)

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, target = make_batch(args, generator)
        out = layer(x)
        mse = F.mse_loss(out.hidden_states, target)
        loss = mse + args.width_penalty * out.width_penalty.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % max(1, args.steps // 6) == 0 or step == args.steps:
            print(f"step {step:5d}  mse {mse.item():.4f}  mean width {out.width_penalty.mean().item():.3f}")
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s")

    layer.eval()
    with torch.no_grad():
        x, target = make_batch(args, generator)
        out = layer(x)
    left, right = out.left_extent.mean((0, 1)), out.right_extent.mean((0, 1))
    print(f"\nheld-out mse {F.mse_loss(out.hidden_states, target).item():.4f}")
    need_left, need_right = max(0, -min(args.offsets)), max(0, max(args.offsets))
    print(f"needed extents: left {need_left}, right {need_right} (at most {layer.max_left} left, {layer.max_right} right)")
    print("head  learned left  learned right")
    for h in range(args.num_heads):
        print(f"{h:4d}  {left[h]:12.2f}  {right[h]:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
