"""Time every dynamic_conv1d backend, forward and forward+backward, in one run.

Each backend is first checked against ``naive`` (outputs and gradients); one that fails is
reported and not timed. Times are medians over ``--repeats`` runs after a warm-up, so that
backends are compared under the same machine load; ratios to ``unfold`` (fairseq's approach)
are printed beside them.

    python scripts/benchmark_ops.py                               # T in 128 512 2048, B*T = 8192
    python scripts/benchmark_ops.py --seq_lens 512 --kernel_size 7 --output_dir benchmarks/ops
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from dynconv_nlp.ops import BACKENDS, dynamic_conv1d, triton_available


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq_lens", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--tokens", type=int, default=8192, help="B * T, fixed across sequence lengths")
    parser.add_argument("--hidden_size", type=int, default=512)
    parser.add_argument("--num_heads", type=int, default=8)
    parser.add_argument("--kernel_size", type=int, default=31)
    parser.add_argument("--causal", action="store_true", help="padding_l = K - 1 instead of K // 2")
    parser.add_argument("--backends", nargs="+", default=None, help="default: every backend that can run here")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output_dir", type=Path, default=None, help="write results.json and results.md here")
    args = parser.parse_args(argv)
    if any(t < 1 or args.tokens % t for t in args.seq_lens):
        parser.error(f"every --seq_lens value must divide --tokens {args.tokens}")
    if args.hidden_size % args.num_heads:
        parser.error(f"--num_heads {args.num_heads} must divide --hidden_size {args.hidden_size}")
    unknown = set(args.backends or []) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {sorted(BACKENDS)}")
    return args


def runnable_backends(device: str) -> list[str]:
    """Every backend except triton off CUDA (its CPU interpreter is for tests, not timing)."""
    names = list(BACKENDS)
    if not (device.startswith("cuda") and triton_available()):
        names.remove("triton")
    return names


def median_ms(fn, repeats: int, device: str) -> float:
    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    fn()  # warm-up: allocator, kernel compilation, caches
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def check_against_naive(backend, x, weight, padding_l, grad_y) -> str | None:
    """None when outputs and gradients match the reference, else what went wrong."""
    results = []
    for name in ("naive", backend):
        try:
            y = dynamic_conv1d(x, weight, padding_l, backend=name)
            results.append((y, *torch.autograd.grad(y, (x, weight), grad_y)))
        except Exception as error:  # a broken backend is reported in the table, not fatal
            return f"{name} raised {type(error).__name__}: {error}"
    tol = dict(atol=1e-4, rtol=1e-4) if x.dtype == torch.float32 else dict(atol=5e-2, rtol=5e-2)
    for label, expected, actual in zip(("output", "grad_x", "grad_weight"), *results):
        if not torch.allclose(actual.float(), expected.float(), **tol):
            return f"{label} differs from naive by {(actual.float() - expected.float()).abs().max().item():.3g}"
    return None


def benchmark(args) -> list[dict]:
    dtype = getattr(torch, args.dtype)
    K, H, C = args.kernel_size, args.num_heads, args.hidden_size
    padding_l = K - 1 if args.causal else K // 2
    rows = []
    for T in args.seq_lens:
        B = args.tokens // T
        g = torch.Generator().manual_seed(0)
        x = torch.randn(B, T, C, generator=g).to(args.device, dtype).requires_grad_()
        weight = torch.randn(B, T, H, K, generator=g).softmax(-1).to(args.device, dtype).requires_grad_()
        grad_y = torch.randn(B, T, C, generator=g).to(args.device, dtype)
        for backend in args.backends or runnable_backends(args.device):
            row = dict(backend=backend, T=T, B=B, C=C, H=H, K=K, dtype=args.dtype)
            row["error"] = check_against_naive(backend, x, weight, padding_l, grad_y)
            if row["error"] is None:

                def forward():
                    with torch.no_grad():
                        dynamic_conv1d(x, weight, padding_l, backend=backend)

                def forward_backward():
                    y = dynamic_conv1d(x, weight, padding_l, backend=backend)
                    torch.autograd.grad(y, (x, weight), grad_y)

                row["forward_ms"] = median_ms(forward, args.repeats, args.device)
                row["forward_backward_ms"] = median_ms(forward_backward, args.repeats, args.device)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def markdown_table(rows: list[dict]) -> str:
    baseline = {(r["T"], "f"): r.get("forward_ms") for r in rows if r["backend"] == "unfold"}
    baseline |= {(r["T"], "fb"): r.get("forward_backward_ms") for r in rows if r["backend"] == "unfold"}
    lines = [
        "| T | B | backend | forward ms | vs unfold | fwd+bwd ms | vs unfold |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["error"]:
            lines.append(f"| {r['T']} | {r['B']} | {r['backend']} | failed check: {r['error']} | | | |")
            continue
        f, fb = r["forward_ms"], r["forward_backward_ms"]
        speedup_f = f"{baseline[(r['T'], 'f')] / f:.1f}x" if baseline.get((r["T"], "f")) else "-"
        speedup_fb = f"{baseline[(r['T'], 'fb')] / fb:.1f}x" if baseline.get((r["T"], "fb")) else "-"
        lines.append(f"| {r['T']} | {r['B']} | {r['backend']} | {f:.1f} | {speedup_f} | {fb:.1f} | {speedup_fb} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    header = (
        f"dynamic_conv1d, B*T = {args.tokens}, C = {args.hidden_size}, H = {args.num_heads}, "
        f"K = {args.kernel_size}, {'causal' if args.causal else 'centred'}, {args.dtype} on {args.device} "
        f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}); "
        f"median of {args.repeats}"
    )
    rows = benchmark(args)
    table = markdown_table(rows)
    print(header + "\n\n" + table)
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / "results.json").write_text(json.dumps(dict(setting=header, rows=rows), indent=2) + "\n")
        (args.output_dir / "results.md").write_text(header + "\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
