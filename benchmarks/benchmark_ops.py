"""Time and size every dynamic_conv1d backend against fairseq's unfold, self-attention and the machine's floor.

For every kernel size K and sequence length T (at a fixed number of tokens B * T), in one run:

* each backend is first checked against ``naive`` (outputs and gradients); one that fails is
  reported and not timed. Its first call is timed on its own: for ``compiled`` that is the
  compilation;
* forward and forward+backward times are medians over ``--repeats`` runs after a warm-up, taken
  in the same run so that the machine's load hits every backend alike, with peak memory;
* ``sdpa`` is ``F.scaled_dot_product_attention`` on the same B, T, C and heads (the attention core
  only, as the op is the convolution core only);
* the floor is what this machine cannot beat: the larger of the op's bytes (inputs read once,
  outputs written once) at the measured copy bandwidth and its multiply-adds at the measured rate
  of a large matmul.

The ``payoff`` part measures what adaptive width buys: the DynamicConv1d layer's forward with its
extents forced to a mean width (l + r) of K / 4, trimmed to the taps that are on, against the same
layer convolving all K taps; and, with ``--width_model``, a trained DynConv model's forward on real
text with and without trimming.

The ``trim`` part measures where trimming pays at a large K (127): the layer with extents that vary
per token (uniform around a mean width, and those a trained model learned, ``--trim_extents``)
untrimmed, trimmed per call, per tile and per bucket of tokens, against the ideal: the same layer
with only the mean's taps.

    python benchmarks/benchmark_ops.py --output_dir benchmarks/ops_cpu          # the README's tables and plot
    python benchmarks/benchmark_ops.py --seq_lens 512 --kernel_sizes 7 --parts ops
    python benchmarks/benchmark_ops.py --device cuda --output_dir benchmarks/ops_gpu   # triton, on a GPU
    python benchmarks/benchmark_ops.py --parts trim --output_dir benchmarks/trim_cpu \
        --trim_extents benchmarks/width/extents/negation_scope-budget-k127-10-seed1.json
"""

import argparse
import functools
import json
import platform
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from dynconv_nlp.benchmarking.extents import forced_extents, learned_extents, learned_looking_extents
from dynconv_nlp.benchmarking.runs import portable
from dynconv_nlp.benchmarking.timing import interleaved_medians, median_ms, peak_mb, seconds, sync
from dynconv_nlp.layers import DynamicConv1d
from dynconv_nlp.ops import BACKENDS, dynamic_conv1d, triton_available
from dynconv_nlp.ops.dispatch import select_backend
from dynconv_nlp.cli import ArgumentParser, exit_on_expected_errors

PARTS = ("ops", "payoff", "trim")


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seq_lens", type=int, nargs="+", default=[128, 512, 2048, 8192])
    parser.add_argument("--tokens", type=int, default=8192, help="B * T, fixed across sequence lengths")
    parser.add_argument("--hidden_size", type=int, default=512)
    parser.add_argument("--num_heads", type=int, default=8)
    parser.add_argument("--kernel_sizes", type=int, nargs="+", default=[7, 31])
    parser.add_argument("--causal", action="store_true", help="padding_l = K - 1 instead of K // 2")
    parser.add_argument("--backends", nargs="+", default=None, help="default: every backend that can run here")
    parser.add_argument("--no_attention", action="store_true", help="leave out the sdpa rows")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--payoff_seq_len", type=int, default=512, help="T of the payoff part")
    parser.add_argument("--trim_kernel_size", type=int, default=127, help="K of the trim part")
    parser.add_argument("--trim_seq_lens", type=int, nargs="+", default=[512, 2048], help="T of the trim part")
    parser.add_argument("--trim_mean_widths", type=float, nargs="+", default=[0.1, 0.25, 0.5],
                        help="mean width of the trim part's extents, as a share of K - 1")
    parser.add_argument("--trim_extents", type=Path, nargs="*", default=[],
                        help="extents a trained model learned (benchmark_width.py --export_extents): the trim part "
                             "also runs each of its layers, with its number of heads")
    parser.add_argument("--width_model", type=Path, help="a trained DynConv checkpoint for the learned-width payoff")
    parser.add_argument("--width_data", type=Path, help="text for --width_model: one per line, or a TSV's first column")
    parser.add_argument("--width_batch_size", type=int, default=64)
    parser.add_argument("--output_dir", type=Path, default=None, help="write results.json, results.md and results.png")
    args = parser.parse_args(argv)
    lengths = args.seq_lens + ([args.payoff_seq_len] if "payoff" in args.parts else [])
    lengths += args.trim_seq_lens if "trim" in args.parts else []
    if any(t < 1 or args.tokens % t for t in lengths):
        parser.error(f"every --seq_lens, --payoff_seq_len and --trim_seq_lens value must divide --tokens {args.tokens}")
    if not all(0 < m <= 0.5 for m in args.trim_mean_widths) or args.trim_kernel_size < 1:
        parser.error("--trim_mean_widths must be in (0, 0.5] (extents uniform in [0, 2 x mean]) and --trim_kernel_size >= 1")
    if args.hidden_size % args.num_heads:
        parser.error(f"--num_heads {args.num_heads} must divide --hidden_size {args.hidden_size}")
    if min(args.kernel_sizes) < 1 or args.repeats < 1:
        parser.error("--kernel_sizes and --repeats must be at least 1")
    unknown = set(args.backends or []) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {sorted(BACKENDS)}")
    if (args.width_model is None) != (args.width_data is None):
        parser.error("--width_model and --width_data go together")
    for path in (args.width_model, args.width_data, *args.trim_extents):
        if path is not None and not path.exists():
            parser.error(f"{path} does not exist")
    return args


def runnable_backends(device: str) -> list[str]:
    """Every backend except triton off CUDA (its CPU interpreter is for tests, not timing)."""
    names = list(BACKENDS)
    if not (device.startswith("cuda") and triton_available()):
        names.remove("triton")
    return names


def measure_machine(device: str, dtype: torch.dtype) -> dict:
    """Copy bandwidth (GB/s, bytes read + written) and large-matmul rate (GFLOP/s) of this device."""
    n_bytes = 2**30 if device.startswith("cuda") else 2**28
    src = torch.empty(n_bytes // 4, device=device).uniform_()
    dst = torch.empty_like(src)
    copy_s = median_ms(lambda: dst.copy_(src), 7, device) / 1e3
    n = 8192 if device.startswith("cuda") else 2048
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    matmul_s = median_ms(lambda: a @ b, 7, device) / 1e3
    return dict(copy_gb_s=2 * n_bytes / copy_s / 1e9, matmul_gflop_s=2 * n**3 / matmul_s / 1e9)


def floor_ms(B, T, C, H, K, itemsize, machine) -> tuple[float, float]:
    """The op's floor on this machine, forward and forward+backward, in ms."""
    x_bytes, w_bytes = B * T * C * itemsize, B * T * H * K * itemsize
    forward_bytes = 2 * x_bytes + w_bytes  # read x and the taps, write y
    # Backward: read grad_y, x and the taps, write grad_x and grad_weight.
    backward_bytes = 3 * x_bytes + 2 * w_bytes
    flops = 2 * B * T * C * K  # one multiply-add per tap and channel
    bandwidth, rate = machine["copy_gb_s"] * 1e9, machine["matmul_gflop_s"] * 1e9
    forward = max(forward_bytes / bandwidth, flops / rate)
    backward = max(backward_bytes / bandwidth, 2 * flops / rate)  # grad_x and grad_weight: one each
    return 1e3 * forward, 1e3 * (forward + backward)


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


def time_and_size(row: dict, forward, forward_backward, args) -> None:
    """Fill ``row`` with the median times and peak memory of both directions."""
    row["forward_ms"] = median_ms(forward, args.repeats, args.device)
    row["forward_backward_ms"] = median_ms(forward_backward, args.repeats, args.device)
    row["forward_peak_mb"] = peak_mb(forward, args.device)
    row["forward_backward_peak_mb"] = peak_mb(forward_backward, args.device)


def benchmark_ops(args, machine: dict) -> list[dict]:
    dtype = getattr(torch, args.dtype)
    H, C = args.num_heads, args.hidden_size
    rows = []
    for K in args.kernel_sizes:
        padding_l = K - 1 if args.causal else K // 2
        for T in args.seq_lens:
            B = args.tokens // T
            g = torch.Generator(args.device).manual_seed(0)  # drawn where they are used: fast on a GPU
            x = torch.randn(B, T, C, generator=g, device=args.device).to(dtype).requires_grad_()
            weight = torch.randn(B, T, H, K, generator=g, device=args.device).softmax(-1).to(dtype).requires_grad_()
            grad_y = torch.randn(B, T, C, generator=g, device=args.device).to(dtype)
            floor = floor_ms(B, T, C, H, K, x.element_size(), machine)
            for backend in args.backends or runnable_backends(args.device):
                row = dict(backend=backend, T=T, B=B, C=C, H=H, K=K, dtype=args.dtype, floor_ms=floor[0],
                           floor_forward_backward_ms=floor[1])

                def forward():
                    with torch.no_grad():
                        dynamic_conv1d(x, weight, padding_l, backend=backend)

                def forward_backward():
                    y = dynamic_conv1d(x, weight, padding_l, backend=backend)
                    torch.autograd.grad(y, (x, weight), grad_y)

                try:
                    first_call = seconds(forward_backward, args.device)
                except Exception:  # reported by the check below
                    first_call = None
                row["error"] = check_against_naive(backend, x, weight, padding_l, grad_y)
                if row["error"] is None:
                    row["first_call_s"] = first_call
                    time_and_size(row, forward, forward_backward, args)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
            if not args.no_attention:
                rows.append(benchmark_attention(B, T, C, H, K, dtype, args))
    return rows


def benchmark_attention(B, T, C, H, K, dtype, args) -> dict:
    """``scaled_dot_product_attention`` over the same tokens: q, k, v [B, H, T, C / H]."""
    g = torch.Generator(args.device).manual_seed(0)
    q, k, v = (torch.randn(B, H, T, C // H, generator=g, device=args.device).to(dtype).requires_grad_()
               for _ in range(3))
    grad_y = torch.randn(B, H, T, C // H, generator=g, device=args.device).to(dtype)

    def forward():
        with torch.no_grad():
            F.scaled_dot_product_attention(q, k, v, is_causal=args.causal)

    def forward_backward():
        y = F.scaled_dot_product_attention(q, k, v, is_causal=args.causal)
        torch.autograd.grad(y, (q, k, v), grad_y)

    row = dict(backend="sdpa", T=T, B=B, C=C, H=H, K=K, dtype=args.dtype, error=None)
    row["first_call_s"] = seconds(forward_backward, args.device)
    time_and_size(row, forward, forward_backward, args)
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def ops_table(rows: list[dict]) -> str:
    by_key = {(r["K"], r["T"], r["backend"]): r for r in rows if not r["error"]}

    def ratio(numerator, denominator) -> str:
        return f"{numerator / denominator:.1f}x" if numerator and denominator else "-"

    def mb(value) -> str:
        return f"{value:.0f}" if value is not None else "-"

    lines = [
        "| K | T | B | backend | fwd ms | fwd / floor | fwd+bwd ms | unfold / this | sdpa / this "
        "| peak MB fwd | peak MB fwd+bwd | first call s |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        key = f"| {r['K']} | {r['T']} | {r['B']} | {r['backend']} |"
        if r["error"]:
            lines.append(f"{key} failed check: {r['error']} | | | | | | | |")
            continue
        unfold, sdpa = by_key.get((r["K"], r["T"], "unfold"), {}), by_key.get((r["K"], r["T"], "sdpa"), {})
        fb = r["forward_backward_ms"]
        floor = "-" if r["backend"] == "sdpa" else ratio(r["forward_ms"], r["floor_ms"])
        first = f"{r['first_call_s']:.2f}" if r.get("first_call_s") is not None else "-"
        lines.append(
            f"{key} {r['forward_ms']:.1f} | {floor} | {fb:.1f} | {ratio(unfold.get('forward_backward_ms'), fb)} "
            f"| {ratio(sdpa.get('forward_backward_ms'), fb)} | {mb(r['forward_peak_mb'])} "
            f"| {mb(r['forward_backward_peak_mb'])} | {first} |"
        )
    return "\n".join(lines)


def targets(rows: list[dict], kernel_size: int = 31) -> list[str]:
    """The issue's CPU targets at K = 31, checked for every backend that was timed."""
    timed = [r for r in rows if r["K"] == kernel_size and not r["error"]]
    by_key = {(r["T"], r["backend"]): r for r in timed}
    lines = []
    for backend in dict.fromkeys(r["backend"] for r in timed if r["backend"] not in ("naive", "unfold", "sdpa")):
        mine = [r for r in timed if r["backend"] == backend]
        vs_unfold = [by_key[(r["T"], "unfold")]["forward_backward_ms"] / r["forward_backward_ms"]
                     for r in mine if (r["T"], "unfold") in by_key]
        vs_sdpa = {r["T"]: by_key[(r["T"], "sdpa")]["forward_backward_ms"] / r["forward_backward_ms"]
                   for r in mine if (r["T"], "sdpa") in by_key}
        vs_floor = [r["forward_ms"] / r["floor_ms"] for r in mine]
        checks = []
        if vs_unfold:
            checks.append(f"fwd+bwd >= 10x unfold at every T: {_yes(min(vs_unfold) >= 10)} (min {min(vs_unfold):.1f}x)")
        long = [s for t, s in vs_sdpa.items() if t >= 512]
        if long:
            checks.append(f"faster than sdpa at every T >= 512: {_yes(min(long) > 1)} (min {min(long):.1f}x)")
        if 2048 in vs_sdpa:
            checks.append(f">= 5x sdpa at T = 2048: {_yes(vs_sdpa[2048] >= 5)} ({vs_sdpa[2048]:.1f}x)")
        checks.append(f"forward within 3x of the floor: {_yes(max(vs_floor) <= 3)} (max {max(vs_floor):.1f}x)")
        lines.append(f"- {backend} (K = {kernel_size}): " + "; ".join(checks))
    return lines


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def layer_ms(layer: DynamicConv1d, x: torch.Tensor, args) -> tuple[float, float]:
    """Median ms of the layer's forward (no gradients) and of its forward+backward on x [B, T, C]."""

    def forward():
        with torch.no_grad():
            layer(x)

    def forward_backward():
        layer(x).hidden_states.sum().backward()

    return median_ms(forward, args.repeats, args.device), median_ms(forward_backward, args.repeats, args.device)


def benchmark_payoff(args) -> list[dict]:
    """Time of the DynamicConv1d layer (and of its op alone) with forced narrow extents, trimmed against all K taps."""
    T = args.payoff_seq_len
    B, C, H = args.tokens // T, args.hidden_size, args.num_heads
    rows = []
    for K in args.kernel_sizes:
        torch.manual_seed(0)
        layer = DynamicConv1d(C, H, K, causal=args.causal).to(args.device)
        x = torch.randn(B, T, C, device=args.device)
        for varied in (False, True):
            left, right = forced_extents(B, T, H, K, varied, args.device, torch.Generator().manual_seed(1))
            if args.causal:
                right = torch.zeros_like(right)
            layer.extents = lambda u, left=left, right=right: (left, right)  # forced, whatever the input
            taps = layer.active_taps(left, right)
            row = dict(K=K, T=T, B=B, extents="varied" if varied else "uniform", taps_kept=len(taps),
                       mean_width=(left + right).mean().item())
            for trim in (False, True):
                layer.trim = trim
                name = "trimmed" if trim else "full"
                row[f"{name}_ms"], row[f"{name}_forward_backward_ms"] = layer_ms(layer, x, args)
            row["trimmed_over_full"] = row["trimmed_ms"] / row["full_ms"]
            row["trimmed_over_full_forward_backward"] = row["trimmed_forward_backward_ms"] / row["full_forward_backward_ms"]
            # The op alone, on the taps the layer makes: all K of them, or the kept ones only.
            with torch.no_grad():
                u = layer.input_proj(x)
                all_taps, kept_taps = layer.taps(u, left, right), layer.taps(u, left, right, taps)
            row["op_full_ms"] = median_ms(
                lambda: dynamic_conv1d(u, all_taps, layer.padding_l), args.repeats, args.device
            )
            row["op_trimmed_ms"] = median_ms(
                lambda: dynamic_conv1d(u, kept_taps, layer.padding_l - taps.start), args.repeats, args.device
            )
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


# The trim part's modes: DynamicConv1d's trim setting for each.
TRIM_PART_MODES = {"full": False, "call": True, "tile": "tile", "token": "token"}


def trim_row(layer: DynamicConv1d, x: torch.Tensor, left: torch.Tensor, right: torch.Tensor, args, **labels) -> dict:
    """The layer on x [B, T, C] with its extents forced to left, right [B, T, H]: each trim mode, and the
    ideal, the same layer whose every token has the mean extents (so that it keeps the mean's taps),
    trimmed per call; forward and forward+backward, all interleaved."""
    K = layer.kernel_size
    row = labels | dict(K=K, T=x.shape[1], B=x.shape[0], H=layer.num_heads,
                        mean_width=((left + right).mean() / (K - 1)).item(),
                        taps_kept=len(layer.active_taps(left, right)))
    mean_left, mean_right = torch.full_like(left, left.mean().item()), torch.full_like(right, right.mean().item())
    row["ideal_taps"] = len(layer.active_taps(mean_left, mean_right))
    settings = {name: (trim, (left, right)) for name, trim in TRIM_PART_MODES.items()} | {"ideal": (True, (mean_left, mean_right))}

    def call(name, backward):
        layer.trim, extents = settings[name]
        layer.extents = lambda u: extents  # forced, whatever the input
        if backward:
            layer(x).hidden_states.sum().backward()
        else:
            with torch.no_grad():
                layer(x)
        sync(args.device)

    # Round after round, every mode once a round, so that the machine's load hits them alike.
    calls = {f"{name}{key}": functools.partial(call, name, bool(key)) for name in settings for key in ("", "_forward_backward")}
    row |= {f"{name}_ms": 1000 * seconds for name, seconds in interleaved_medians(calls, args.repeats).items()}
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def benchmark_trim(args) -> list[dict]:
    """The layer at a large K with extents that vary per token and head: all K taps, trimmed per call (the
    taps some token of the batch uses), per tile of 32 tokens (``trim="tile"``) and per bucket of
    tokens (``trim="token"``), against the ideal (only the mean's taps), forward and forward+backward.
    Extents: learned-looking (uniform around each mean width) and, per layer, each ``--trim_extents``."""
    K, C, H = args.trim_kernel_size, args.hidden_size, args.num_heads
    rows = []
    for T in args.trim_seq_lens:
        B = args.tokens // T
        torch.manual_seed(0)
        layer = DynamicConv1d(C, H, K, causal=args.causal).to(args.device)
        x = torch.randn(B, T, C, device=args.device)
        for mean_width in args.trim_mean_widths:
            left, right = learned_looking_extents(B, T, H, K, mean_width, args.causal, torch.Generator().manual_seed(1))
            rows.append(trim_row(layer, x, left.to(args.device), right.to(args.device), args,
                                 extents=f"uniform, mean {mean_width:g}"))
        for path in args.trim_extents:
            for index, (left, right) in enumerate(learned_extents(path, B, T, K)):
                torch.manual_seed(0)
                learned_layer = DynamicConv1d(C, left.shape[-1], K, causal=args.causal).to(args.device)
                rows.append(trim_row(learned_layer, x, left.to(args.device), right.to(args.device), args,
                                     extents=f"{path.stem}, layer {index}"))
    return rows


def trim_table(rows: list[dict]) -> str:
    modes = ("call", "tile", "token", "ideal")
    lines = [
        "Speed-up over all K taps; share: the ideal's time over per-token's (the share of the ideal speed-up it gets).\n",
        "| extents | K | T | B | H | mean width / (K − 1) | taps: per call, ideal | fwd ms: all K, per call, per tile, per token, ideal "
        "| fwd+bwd ms: all K, per call, per tile, per token, ideal | fwd+bwd speed-up: per call, per tile, per token, ideal "
        "| per token: fwd share, fwd+bwd share |",
        "|---|---:|---:|---:|---:|---:|---|---|---|---|---|",
    ]
    for r in rows:
        times = {key: ", ".join(f"{r[f'{m}{key}_ms']:.0f}" for m in ("full", *modes)) for key in ("", "_forward_backward")}
        speed = ", ".join(f"{r['full_forward_backward_ms'] / r[f'{m}_forward_backward_ms']:.2f}x" for m in modes)
        lines.append(
            f"| {r['extents']} | {r['K']} | {r['T']} | {r['B']} | {r['H']} | {r['mean_width']:.2f} "
            f"| {r['taps_kept']}, {r['ideal_taps']} | {times['']} | {times['_forward_backward']} | {speed} "
            f"| {r['ideal_ms'] / r['token_ms']:.2f}, {r['ideal_forward_backward_ms'] / r['token_forward_backward_ms']:.2f} |"
        )
    learned = [r for r in rows if not r["extents"].startswith("uniform")]
    if learned:
        shares = [r["ideal_forward_backward_ms"] / r["token_forward_backward_ms"] for r in learned]
        lines.append(f"\nTarget (issue 33): trim=\"token\" forward+backward at >= 80% of the ideal speed-up with learned "
                     f"widths, every layer and T: {_yes(min(shares) >= 0.8)} (min {min(shares):.2f}, "
                     f"median {statistics.median(shares):.2f})")
    return "\n".join(lines)


def benchmark_learned_widths(args) -> dict:
    """A trained model's forward on real text with its learned widths trimmed, against all K taps."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(args.width_model).to(args.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.width_model)
    lines = args.width_data.read_text(encoding="utf-8").splitlines()
    texts = [line.split("\t")[0] for line in lines if line.strip()]
    if texts and texts[0] == "sentence":  # a GLUE TSV's header
        texts = texts[1:]
    batch = tokenizer(texts[: args.width_batch_size], padding=True, truncation=True, return_tensors="pt").to(args.device)
    batch = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    layers = [m for m in model.modules() if isinstance(m, DynamicConv1d)]
    with torch.no_grad():
        widths = model(**batch, output_widths=True).widths
    mask = batch["attention_mask"].bool()
    mean_widths = [w.sum(-1).mean(-1)[mask].mean().item() for w in widths]  # l + r per token, mean over heads
    times = {}
    for trim in (False, True):
        for layer in layers:
            layer.trim = trim

        def forward():
            with torch.no_grad():
                model(**batch)

        times[trim] = median_ms(forward, args.repeats, args.device)
    row = dict(model=portable(args.width_model), batch=list(batch["input_ids"].shape),
               kernel_sizes=[layer.kernel_size for layer in layers], mean_widths=mean_widths,
               full_ms=times[False], trimmed_ms=times[True], trimmed_over_full=times[True] / times[False])
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def payoff_table(rows: list[dict], learned: dict | None) -> str:
    lines = [
        "| K | T | B | extents | mean width l + r | taps kept | op fwd ms, all K taps | op fwd ms, trimmed "
        "| layer fwd ms, all K | layer fwd ms, trimmed | trimmed / all "
        "| layer fwd+bwd ms, all K | layer fwd+bwd ms, trimmed | trimmed / all |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['K']} | {r['T']} | {r['B']} | {r['extents']} | {r['mean_width']:.1f} | {r['taps_kept']} "
            f"| {r['op_full_ms']:.1f} | {r['op_trimmed_ms']:.1f} "
            f"| {r['full_ms']:.1f} | {r['trimmed_ms']:.1f} | {r['trimmed_over_full']:.2f} "
            f"| {r['full_forward_backward_ms']:.1f} | {r['trimmed_forward_backward_ms']:.1f} "
            f"| {r['trimmed_over_full_forward_backward']:.2f} |"
        )
    if learned:
        widths = ", ".join(f"{w:.1f}/{k - 1}" for w, k in zip(learned["mean_widths"], learned["kernel_sizes"]))
        lines += [
            "",
            f"Learned widths ({learned['model']}, batch {learned['batch']}; mean l + r per layer / its K - 1: "
            f"{widths}): whole model forward {learned['full_ms']:.1f} ms with all K taps, "
            f"{learned['trimmed_ms']:.1f} ms trimmed ({learned['trimmed_over_full']:.2f}x).",
        ]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Time against T, log-log: one row of panels per K (forward, forward+backward)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed (pip install 'dynconv_nlp[plots]'): no plot written", file=sys.stderr)
        return
    kernel_sizes = sorted({r["K"] for r in rows})
    fig = Figure(figsize=(11, 4 * len(kernel_sizes)), layout="constrained")
    axes = fig.subplots(len(kernel_sizes), 2, squeeze=False)
    for ax_row, K in zip(axes, kernel_sizes):
        timed = [r for r in rows if r["K"] == K and not r["error"]]
        for ax, key, floor_key, label in zip(
            ax_row, ("forward_ms", "forward_backward_ms"), ("floor_ms", "floor_forward_backward_ms"),
            ("forward", "forward + backward"),
        ):
            for backend in dict.fromkeys(r["backend"] for r in timed):
                points = sorted((r["T"], r[key]) for r in timed if r["backend"] == backend)
                style = "--" if backend == "sdpa" else "-"
                ax.plot(*zip(*points), style, marker="o", label=backend)
            floors = sorted({(r["T"], r[floor_key]) for r in timed if floor_key in r})
            if floors:
                ax.plot(*zip(*floors), ":", color="black", label="floor")
            ax.set(xscale="log", yscale="log", xlabel="sequence length T (B * T fixed)", ylabel="ms",
                   title=f"{label}, K = {K}")
            ax.grid(True, which="both", alpha=0.3)
        ax_row[0].legend(fontsize="small")
    fig.suptitle(title, fontsize="small")
    fig.savefig(path, dpi=100)


@exit_on_expected_errors
def main(argv=None) -> int:
    args = parse_args(argv)
    dtype = getattr(torch, args.dtype)
    machine = measure_machine(args.device, dtype)
    header = (
        f"dynamic_conv1d, B*T = {args.tokens}, C = {args.hidden_size}, H = {args.num_heads}, "
        f"{'causal' if args.causal else 'centred'}, {args.dtype} on {args.device} "
        f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}); "
        f"median of {args.repeats}. Machine: copy {machine['copy_gb_s']:.1f} GB/s, "
        f"{args.dtype} matmul {machine['matmul_gflop_s']:.0f} GFLOP/s."
    )
    results, sections = dict(setting=header, machine=machine), [header]
    if "ops" in args.parts:
        rows = benchmark_ops(args, machine)
        example = torch.empty(1, 1, args.hidden_size, device=args.device, requires_grad=True)
        auto = {
            "inference": select_backend(example.detach(), torch.empty(1, 1, args.num_heads, 31, device=args.device)),
            "training": select_backend(example, torch.empty(1, 1, args.num_heads, 31, device=args.device)),
        }
        results |= dict(rows=rows, auto_at_k31=auto)
        sections += [ops_table(rows), f"auto at K = 31 picks {auto['inference']} for inference and "
                     f"{auto['training']} for training.", "\n".join(targets(rows))]
    if "payoff" in args.parts:
        payoff = benchmark_payoff(args)
        learned = benchmark_learned_widths(args) if args.width_model else None
        results |= dict(payoff=payoff, learned_widths=learned)
        sections.append(payoff_table(payoff, learned))
    if "trim" in args.parts:
        trim = benchmark_trim(args)
        results |= dict(trim=trim)
        sections.append(trim_table(trim))
    report = "\n\n".join(s for s in sections if s)
    print(report)
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.output_dir / "results.md").write_text(report + "\n")
        if "ops" in args.parts:
            plot(results["rows"], args.output_dir / "results.png", header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
