"""Time DynConv models against same-size Transformers, in one run: classifier training and inference, and decoding.

Classifier: ``DynConvForSequenceClassification`` against ``BertForSequenceClassification`` with
the same width, layers, heads, feed-forward size, activation, vocabulary and dropout (BERT with
``attn_implementation="sdpa"``; its attention dropout is the config's ``attention_probs_dropout_prob``,
DynConv's cross-attention dropout: set it to 0 in a copy of the config to time BERT without it, as
on CPU attention dropout moves SDPA off its fused kernel). BERT also has the learned position table
that the longest T needs. For every T in ``--seq_lens`` a batch holds ``--tokens`` tokens
(B = tokens // T, at least 1) of random ids, without padding. Training throughput is tokens per
second of forward + backward + AdamW step; inference latency is milliseconds per batch of an
eval-mode forward under ``torch.inference_mode``.

Decoding: ``DynConvForConditionalGeneration`` (``--decode_config_name``, default small_mt.json)
against the Marian Transformer of the same size (``configs/models/transformer_small_mt.json``),
both with their caches: DynConv keeps the last K - 1 conv inputs per layer (constant size), the
Transformer keys and values of every past token. Marian rather than BART because the project
already has the matched baseline config (it is the one run_translation.py trains) and because
Marian's sinusoidal positions, like DynConv's, take any output length without a learned table;
``--baseline_config_name`` takes any seq2seq config (a BART one too). Greedy ``generate()`` is
forced to make exactly max(--decode_lengths) tokens (min_new_tokens = max_new_tokens, so that an
untrained model's EOS cannot stop it); a logits processor stamps the clock at every step, and
the time of token n is the gap between stamps n - 1 and n. Each output length reports the
median over the ``--window`` tokens that end there, pooled over repeats.

Every figure is a median over ``--repeats`` runs after a warm-up, with the two models' runs
interleaved (A, B, A, B, ...) so that load from other processes hits both alike; ratios are
ratios of those medians. Models are randomly initialised: untrained weights time the same.

Widths: the DynConv classifier with K = ``--width_kernel_size`` in every layer and every layer's
extents forced to learned-looking ones (``dynconv_nlp.benchmarking.extents.learned_looking_extents``) of each mean
width: inference with all K taps, trimmed per call (``trim=True``) and per tile (``trim="tile"``).

    python benchmarks/benchmark_model.py                  # classifier and decoding, small sizes: about 7 min on one core
    python benchmarks/benchmark_model.py --parts widths --output_dir benchmarks/widths_model_cpu
    python benchmarks/benchmark_model.py --parts classifier --seq_lens 512 2048 --output_dir benchmarks/model
    OMP_NUM_THREADS=1 python benchmarks/benchmark_model.py --parts decoding --decode_lengths 16 128 512
"""

import argparse
import functools
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    BertConfig,
    BertForSequenceClassification,
    LogitsProcessor,
    LogitsProcessorList,
)

import dynconv_nlp  # noqa: F401  registers "dynconv" with the Auto classes
from dynconv_nlp.models.dynconv import DynConvConfig, DynConvForConditionalGeneration, DynConvForSequenceClassification
from dynconv_nlp.benchmarking.extents import learned_looking_extents
from dynconv_nlp.benchmarking.params import count_parameters
from dynconv_nlp.benchmarking.timing import interleaved_medians
from dynconv_nlp.cli import ArgumentParser, exit_on_expected_errors
from dynconv_nlp.layers import DynamicConv1d
from dynconv_nlp.layers.dynamic_conv import CONV_BACKENDS


CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "models"
PARTS = ("classifier", "decoding", "widths")
DEFAULT_PARTS = ("classifier", "decoding")
TARGET_WIDTH_SPEEDUP = 1.3  # issue 21: model inference, all K taps over trimmed, at a mean width of 25%
# The targets (performance issue, item 4).
TARGET_T = 2048
TARGET_TRAIN_RATIO = 1.5  # DynConv tokens/s over BERT's
TARGET_INFER_SPEEDUP = 2.0  # BERT ms over DynConv ms
TARGET_DECODE_GROWTH = 1.2  # DynConv ms/token at the longest output over the shortest
# Special ids shared by both seq2seq models, so that generate() treats them alike.
PAD, BOS, EOS = 0, 1, 2


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(prog=Path(__file__).name, description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(DEFAULT_PARTS))
    parser.add_argument("--config_name", type=Path, default=CONFIGS / "small.json", help="DynConv classifier config")
    parser.add_argument("--seq_lens", type=int, nargs="+", default=[128, 512, 2048, 4096])
    # 4096, not 8192: BERT's training step at T = 4096 then holds about 6 GB and takes about 25 s on one core.
    parser.add_argument("--tokens", type=int, default=4096, help="tokens per classifier batch: B = tokens // T")
    parser.add_argument("--decode_config_name", type=Path, default=CONFIGS / "small_mt.json")
    parser.add_argument("--baseline_config_name", type=Path, default=CONFIGS / "transformer_small_mt.json",
                        help="the Transformer seq2seq config of the same size (Marian, BART, ...)")
    parser.add_argument("--decode_lengths", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512])
    # 8, not 1: at batch 1 Python overhead hides most of the per-token work whose growth is measured.
    parser.add_argument("--decode_batch_size", type=int, default=8)
    parser.add_argument("--source_len", type=int, default=32, help="source tokens per sequence when decoding")
    parser.add_argument("--window", type=int, default=8, help="tokens ending at each output length, pooled")
    parser.add_argument("--vocab_size", type=int, default=8000, help="every model's (the project's BPE size)")
    parser.add_argument("--conv_backend", choices=CONV_BACKENDS, default=None, help="default: the config's")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--width_kernel_size", type=int, default=127, help="K of every layer in the widths part")
    parser.add_argument("--width_seq_lens", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--width_mean_widths", type=float, nargs="+", default=[0.1, 0.25, 0.5],
                        help="the forced extents' mean width, a share of K - 1 in (0, 0.5]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", type=Path, default=None, help="write results.json and results.md here")
    args = parser.parse_args(argv)
    for name in ("tokens", "decode_batch_size", "source_len", "window", "repeats", "vocab_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.vocab_size <= EOS:
        parser.error(f"--vocab_size must be > {EOS}: ids 0, 1, 2 are pad, bos and eos")
    if not all(0 < m <= 0.5 for m in args.width_mean_widths) or args.width_kernel_size < 1 or min(args.width_seq_lens) < 1:
        parser.error("--width_mean_widths must be in (0, 0.5], --width_kernel_size and --width_seq_lens >= 1")
    if min(args.seq_lens) < 1:
        parser.error(f"every --seq_lens value must be >= 1, got {args.seq_lens}")
    if min(args.decode_lengths) < 2:
        # The first token's time includes the encoder; a token's time is the gap since the one before.
        parser.error(f"every --decode_lengths value must be >= 2, got {args.decode_lengths}")
    args.seq_lens = sorted(set(args.seq_lens))
    args.decode_lengths = sorted(set(args.decode_lengths))
    # Configs are read and checked here, so that a bad file or value stops the run before any timing.
    try:
        if "classifier" in args.parts:
            args.classifier_configs = classifier_configs(args)
        if "decoding" in args.parts:
            args.decoding_configs = decoding_configs(args)
        if "widths" in args.parts:
            args.width_config = width_config(args)
    except (OSError, ValueError, TypeError) as error:
        parser.error(str(error).strip().splitlines()[0])
    return args


def load_config(path: Path, flag: str, dynconv: bool = True, **overrides):
    """The config in JSON file ``path`` with ``overrides``; ValueError, naming ``flag``, when it does not fit."""
    if not path.is_file():  # a missing file would otherwise be looked up on the Hub
        raise ValueError(f"{flag} {path} is not a file")
    config = AutoConfig.from_pretrained(str(path), **overrides)
    if dynconv and not isinstance(config, DynConvConfig):
        raise ValueError(f"{flag} must be a DynConv config, got model_type {config.model_type!r}")
    return config


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Classifier: DynConv against BERT


def classifier_configs(args) -> dict:
    """DynConv classifier config from ``--config_name`` and a BERT config with the same sizes, both 2-way."""
    overrides = dict(vocab_size=args.vocab_size, num_labels=2)
    if args.conv_backend:
        overrides["conv_backend"] = args.conv_backend
    config = load_config(args.config_name, "--config_name", **overrides)
    # A learned position table must hold the longest T (sinusoids need none); BERT's always must.
    config.max_position_embeddings = max(config.max_position_embeddings, max(args.seq_lens))
    bert_config = BertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.encoder_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act,
        hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        classifier_dropout=config.classifier_dropout,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=max(config.type_vocab_size, 1),
        layer_norm_eps=config.layer_norm_eps,
        initializer_range=config.initializer_range,
        num_labels=2,
    )
    return {"DynConv": config, "BERT": bert_config}


def classifier_models(args) -> dict[str, torch.nn.Module]:
    configs = args.classifier_configs
    torch.manual_seed(args.seed)
    return {
        "DynConv": DynConvForSequenceClassification(configs["DynConv"]),
        "BERT": BertForSequenceClassification._from_config(configs["BERT"], attn_implementation="sdpa"),
    }


def benchmark_classifier(args) -> dict:
    models = classifier_models(args)
    # The same optimizer for both: AdamW's cost is per parameter, and the counts are printed beside the times.
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in models.items()}
    params = {name: count_parameters(m) for name, m in models.items()}
    progress(f"classifier parameters: {params}")

    def train_step(name, input_ids, labels):
        models[name].train()
        models[name](input_ids=input_ids, labels=labels).loss.backward()
        optimizers[name].step()
        optimizers[name].zero_grad(set_to_none=True)

    def infer(name, input_ids):
        models[name].eval()
        with torch.inference_mode():
            models[name](input_ids=input_ids)

    rows = []
    for T in args.seq_lens:
        B = max(1, args.tokens // T)
        g = torch.Generator().manual_seed(args.seed)
        input_ids = torch.randint(EOS + 1, args.vocab_size, (B, T), generator=g)  # [B, T], no padding
        labels = torch.randint(0, 2, (B,), generator=g)  # [B]
        progress(f"classifier T = {T}, B = {B}")
        # The warm-up round also creates AdamW's state and makes the compiled conv backend's first call.
        train_s = interleaved_medians({n: functools.partial(train_step, n, input_ids, labels) for n in models}, args.repeats)
        infer_s = interleaved_medians({n: functools.partial(infer, n, input_ids) for n in models}, args.repeats)
        row = dict(T=T, B=B)
        for name in models:
            row[f"{name}_train_tokens_per_s"] = B * T / train_s[name]
            row[f"{name}_infer_ms"] = 1e3 * infer_s[name]
        row["train_ratio"] = row["DynConv_train_tokens_per_s"] / row["BERT_train_tokens_per_s"]
        row["infer_speedup"] = row["BERT_infer_ms"] / row["DynConv_infer_ms"]
        rows.append(row)
        progress(json.dumps(row))
    return dict(params=params, rows=rows, targets=classifier_targets(rows))


def classifier_targets(rows: list[dict]) -> dict | None:
    at_target = [r for r in rows if r["T"] == TARGET_T]
    if not at_target:
        return None
    r = at_target[0]
    return dict(
        T=TARGET_T,
        train_ratio=r["train_ratio"],
        train_met=r["train_ratio"] >= TARGET_TRAIN_RATIO,
        infer_speedup=r["infer_speedup"],
        infer_met=r["infer_speedup"] >= TARGET_INFER_SPEEDUP,
    )


def classifier_markdown(result: dict) -> str:
    p = result["params"]
    lines = [
        f"Classifier: DynConv {p['DynConv'] / 1e6:.2f}M parameters, BERT {p['BERT'] / 1e6:.2f}M; "
        "train = forward + backward + AdamW, tokens/s; inference = eval forward, ms per batch",
        "",
        "| T | B | DynConv train tok/s | BERT train tok/s | DynConv / BERT | DynConv infer ms | BERT infer ms "
        "| BERT / DynConv |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['T']} | {r['B']} | {r['DynConv_train_tokens_per_s']:.0f} | {r['BERT_train_tokens_per_s']:.0f} "
            f"| {r['train_ratio']:.2f}x | {r['DynConv_infer_ms']:.1f} | {r['BERT_infer_ms']:.1f} "
            f"| {r['infer_speedup']:.2f}x |"
        )
    t = result["targets"]
    lines.append("")
    if t is None:
        lines.append(f"Targets: T = {TARGET_T} not measured.")
    else:
        lines.append(
            f"Targets at T = {TARGET_T}: training >= {TARGET_TRAIN_RATIO}x BERT: {t['train_ratio']:.2f}x, "
            f"{'met' if t['train_met'] else 'NOT met'}; inference >= {TARGET_INFER_SPEEDUP}x faster: "
            f"{t['infer_speedup']:.2f}x, {'met' if t['infer_met'] else 'NOT met'}."
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Decoding: DynConv's conv states against a Transformer's key/value cache


class StepClock(LogitsProcessor):
    """Stamps ``time.perf_counter()`` once per generated token, right after that step's forward pass.

    Logits processors run on the step's scores [B, V] before the next token is chosen, so the gap
    between two stamps is one whole step of ``generate()``: forward, processors, selection.
    """

    def __init__(self):
        self.stamps: list[float] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.stamps.append(time.perf_counter())
        return scores


def decoding_configs(args) -> dict:
    """DynConv encoder-decoder and Transformer baseline configs, with the same vocabulary and special ids."""
    special = dict(vocab_size=args.vocab_size, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
                   decoder_start_token_id=BOS)
    overrides = dict(special, conv_backend=args.conv_backend) if args.conv_backend else special
    config = load_config(args.decode_config_name, "--decode_config_name", **overrides)
    baseline = load_config(args.baseline_config_name, "--baseline_config_name", dynconv=False, **special)
    if not getattr(baseline, "is_encoder_decoder", False):
        raise ValueError(f"--baseline_config_name: {baseline.model_type!r} is not an encoder-decoder model")
    if getattr(baseline, "decoder_vocab_size", None) is not None:
        baseline.decoder_vocab_size = args.vocab_size  # Marian: its own target vocabulary size
    # Positions up to the start token plus the longest output (a sinusoid table is free to grow).
    positions = max(args.decode_lengths) + 1, args.source_len
    config.max_position_embeddings = max(config.max_position_embeddings, *positions)
    baseline.max_position_embeddings = max(baseline.max_position_embeddings, *positions)
    return {"DynConv": config, baseline.model_type.capitalize(): baseline}


def decoding_models(args) -> dict[str, torch.nn.Module]:
    """The models of :func:`decoding_configs`, randomly initialised, in eval mode."""
    (dyn, config), (name, baseline) = args.decoding_configs.items()
    torch.manual_seed(args.seed)
    models = {
        dyn: DynConvForConditionalGeneration(config),
        name: AutoModelForSeq2SeqLM.from_config(baseline, attn_implementation="sdpa"),
    }
    for model in models.values():
        model.eval()
    return models


def generate(model, source: torch.Tensor, new_tokens: int, **kwargs):
    """Greedy generate() of exactly ``new_tokens`` tokens for source ids [B, S]."""
    return model.generate(
        input_ids=source,
        attention_mask=torch.ones_like(source),
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,  # EOS is masked out until the last token: every run has the same length
        do_sample=False,
        num_beams=1,
        **kwargs,
    )


def decoder_of(model) -> torch.nn.Module:
    """The module that runs the decoder layers once per generate() step."""
    return model.get_decoder()


def check_cache(model, source: torch.Tensor, new_tokens: int = 8) -> dict:
    """Whether generate() decodes incrementally, and correctly.

    ``decoder_tokens``: how many decoder positions each step feeds the decoder (1 after the first
    step when the cache is used, the whole prefix when not). ``max_logit_diff``: largest difference
    between the logits of a cached and an uncached generate(), which recomputes every prefix.
    """
    seen = []

    def record(module, args, kwargs):
        # Ids [B, T] or embeddings [B, T, C], by keyword (transformers) or first positional (DynConv).
        tokens = next(t for t in (kwargs.get("input_ids"), kwargs.get("inputs_embeds"), *args[:1]) if t is not None)
        seen.append(tokens.shape[1])

    handle = decoder_of(model).register_forward_pre_hook(record, with_kwargs=True)
    try:
        cached = generate(model, source, new_tokens, return_dict_in_generate=True, output_logits=True)
    finally:
        handle.remove()
    uncached = generate(model, source, new_tokens, return_dict_in_generate=True, output_logits=True, use_cache=False)
    diff = max((a - b).abs().max().item() for a, b in zip(cached.logits, uncached.logits))
    return dict(decoder_tokens=seen, incremental=seen[1:] == [1] * (new_tokens - 1), max_logit_diff=diff)


def token_times_ms(stamps: list[float], length: int, window: int) -> list[float]:
    """Times in ms of tokens max(2, length - window + 1) ... length (1-based) from per-step stamps."""
    first = max(2, length - window + 1)
    return [1e3 * (stamps[n - 1] - stamps[n - 2]) for n in range(first, length + 1)]


def benchmark_decoding(args) -> dict:
    models = decoding_models(args)
    params = {name: count_parameters(m) for name, m in models.items()}
    progress(f"decoding parameters: {params}")
    g = torch.Generator().manual_seed(args.seed)
    source = torch.randint(EOS + 1, args.vocab_size, (args.decode_batch_size, args.source_len), generator=g)  # [B, S]
    longest = max(args.decode_lengths)

    checks = {}
    for name, model in models.items():  # also the warm-up
        checks[name] = check_cache(model, source)
        progress(f"{name} cache check: {json.dumps({k: v for k, v in checks[name].items() if k != 'decoder_tokens'})}")
        if not checks[name]["incremental"] or checks[name]["max_logit_diff"] > 1e-3:
            progress(f"WARNING: {name} does not decode incrementally, or its cache changes the logits")

    samples = {name: {n: [] for n in args.decode_lengths} for name in models}
    total_s = {name: [] for name in models}
    for r in range(args.repeats):
        for name, model in models.items():  # interleaved, as in the classifier part
            clock = StepClock()
            start = time.perf_counter()
            generate(model, source, longest, logits_processor=LogitsProcessorList([clock]))
            total_s[name].append(time.perf_counter() - start)
            if len(clock.stamps) != longest:
                raise RuntimeError(f"{name}: {len(clock.stamps)} generate() steps, expected {longest}")
            for n in args.decode_lengths:
                samples[name][n].extend(token_times_ms(clock.stamps, n, args.window))
        took = ", ".join(f"{name} {times[-1]:.2f} s" for name, times in total_s.items())
        progress(f"decoding repeat {r + 1}/{args.repeats}: {took}")

    names = list(models)
    rows = []
    for n in args.decode_lengths:
        row = dict(length=n)
        for name in names:
            row[f"{name}_ms_per_token"] = statistics.median(samples[name][n])
        row["ratio"] = row[f"{names[1]}_ms_per_token"] / row[f"{names[0]}_ms_per_token"]
        rows.append(row)
    first, last = rows[0], rows[-1]
    growth = {name: last[f"{name}_ms_per_token"] / first[f"{name}_ms_per_token"] for name in names}
    return dict(
        models=names,
        params=params,
        batch_size=args.decode_batch_size,
        source_len=args.source_len,
        window=args.window,
        cache_checks=checks,
        generate_s={name: statistics.median(t) for name, t in total_s.items()},
        rows=rows,
        growth=dict(first=first["length"], last=last["length"], **growth),
        target_met=growth["DynConv"] <= TARGET_DECODE_GROWTH,
    )


def decoding_markdown(result: dict) -> str:
    dyn, base = result["models"]
    p, g = result["params"], result["growth"]
    lines = [
        f"Decoding: DynConv {p[dyn] / 1e6:.2f}M parameters, {base} {p[base] / 1e6:.2f}M; greedy, batch "
        f"{result['batch_size']}, source {result['source_len']} tokens; ms per token, median of the "
        f"{result['window']} tokens ending at each length",
        "",
        f"| output length | DynConv ms/token | {base} ms/token | {base} / DynConv |",
        "|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['length']} | {r[f'{dyn}_ms_per_token']:.2f} | {r[f'{base}_ms_per_token']:.2f} "
                     f"| {r['ratio']:.2f}x |")
    lines.append("")
    lines.append(
        f"Step {g['last']} / step {g['first']}: DynConv {g[dyn]:.2f}x (target <= {TARGET_DECODE_GROWTH}x: "
        f"{'met' if result['target_met'] else 'NOT met'}), {base} {g[base]:.2f}x. "
        f"Whole generate(): DynConv {result['generate_s'][dyn]:.2f} s, {base} {result['generate_s'][base]:.2f} s."
    )
    for name, check in result["cache_checks"].items():
        lines.append(
            f"{name} cache: {'incremental' if check['incremental'] else 'NOT incremental'} "
            f"(decoder positions per step {check['decoder_tokens']}), cached vs recomputed logits differ by "
            f"{check['max_logit_diff']:.1e}."
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Widths: what trimming saves a whole model at a large K


def width_config(args) -> DynConvConfig:
    """The classifier of ``--config_name`` with K = ``--width_kernel_size`` in every layer."""
    overrides = dict(vocab_size=args.vocab_size, num_labels=2, kernel_size=args.width_kernel_size)
    if args.conv_backend:
        overrides["conv_backend"] = args.conv_backend
    config = load_config(args.config_name, "--config_name", **overrides)
    config.max_position_embeddings = max(config.max_position_embeddings, max(args.width_seq_lens))
    return config


def benchmark_widths(args) -> dict:
    """Inference with every layer's extents forced to each mean width: all K taps, per call, per tile."""
    torch.manual_seed(args.seed)
    model = DynConvForSequenceClassification(args.width_config).eval()
    layers = [m for m in model.modules() if isinstance(m, DynamicConv1d)]
    modes = {"full": False, "call": True, "tile": "tile"}

    def infer(mode, input_ids):
        for layer in layers:
            layer.trim = modes[mode]
        with torch.inference_mode():
            model(input_ids=input_ids)

    rows = []
    for T in args.width_seq_lens:
        B = max(1, args.tokens // T)
        input_ids = torch.randint(EOS + 1, args.vocab_size, (B, T), generator=torch.Generator().manual_seed(args.seed))
        for mean_width in args.width_mean_widths:
            generator = torch.Generator().manual_seed(args.seed)
            for layer in layers:
                left, right = learned_looking_extents(B, T, layer.num_heads, layer.kernel_size, mean_width, layer.causal, generator)
                layer.extents = lambda u, left=left, right=right: (left, right)  # forced, whatever the input
            progress(f"widths T = {T}, B = {B}, mean width {mean_width}")
            seconds = interleaved_medians({m: functools.partial(infer, m, input_ids) for m in modes}, args.repeats)
            row = dict(T=T, B=B, mean_width=mean_width) | {f"{m}_ms": 1e3 * s for m, s in seconds.items()}
            row |= {f"{m}_speedup": row["full_ms"] / row[f"{m}_ms"] for m in ("call", "tile")}
            rows.append(row)
            progress(json.dumps(row))
    for layer in layers:
        del layer.extents  # the layers' own extents again
    return dict(kernel_size=args.width_kernel_size, layers=len(layers), rows=rows)


def widths_markdown(result: dict) -> str:
    lines = [
        f"Widths: DynConv classifier, K = {result['kernel_size']} in all {result['layers']} layers, extents forced "
        "per token and head (each side's share uniform in [0, 2 x mean]); inference ms per batch.",
        "",
        "| T | B | mean width / (K − 1) | all K ms | per call ms | per tile ms | speed-up per call | speed-up per tile |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['T']} | {r['B']} | {r['mean_width']:.2f} | {r['full_ms']:.0f} | {r['call_ms']:.0f} "
                     f"| {r['tile_ms']:.0f} | {r['call_speedup']:.2f}x | {r['tile_speedup']:.2f}x |")
    for r in result["rows"]:
        if r["mean_width"] == 0.25:
            best = max(r["call_speedup"], r["tile_speedup"])
            met = "met" if best >= TARGET_WIDTH_SPEEDUP else "NOT met"
            lines.append(f"\nTarget (issue 21), T = {r['T']}: model inference >= {TARGET_WIDTH_SPEEDUP}x faster "
                         f"than all K at a mean width of 25%: {met} ({best:.2f}x)")
    return "\n".join(lines)


@exit_on_expected_errors
def main(argv=None) -> int:
    args = parse_args(argv)
    configs = getattr(args, "classifier_configs", None) or getattr(args, "decoding_configs", None)
    config = configs["DynConv"] if configs else args.width_config
    backend = config.conv_backend  # "auto": chosen per call by dynconv_nlp.ops.select_backend
    header = (
        f"benchmark_model, float32 on cpu ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}); median of {args.repeats}, "
        f"DynConv conv_backend {backend!r}"
    )
    results, sections = dict(setting=header), [header]
    if "classifier" in args.parts:
        results["classifier"] = benchmark_classifier(args)
        sections.append(classifier_markdown(results["classifier"]))
    if "decoding" in args.parts:
        results["decoding"] = benchmark_decoding(args)
        sections.append(decoding_markdown(results["decoding"]))
    if "widths" in args.parts:
        results["widths"] = benchmark_widths(args)
        sections.append(widths_markdown(results["widths"]))
    text = "\n\n".join(sections)
    print(text)
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.output_dir / "results.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
