"""What a trained DynConv encoder does with its widths: the extents of every real token, by layer and token class.

Every summary of the learned widths is computed here, from the extents that :func:`collect_extents`
gathers: the mean extents per layer (:func:`summarize_widths`, which the model card and the training
logs show through ``dynconv_nlp.hub``), the share of the kernel in use (:func:`mean_width_fractions`),
the means per token class, and the extents per token averaged over heads that
``dynconv_nlp.plotting`` draws (:func:`head_means`).

    extents, token_ids = collect_extents(model, batches)   # L x [N, H, 2], [N] over the real tokens
    classes = token_classes(tokenizer, texts, max_length)   # N class names, in the same order
    by_class = extents_by_token_class(extents, classes)
    plot_extent_histograms(extents, conv_kernel_sizes(model.config), "width_histograms.png")

Classes belong to the words of the text (split at white space, as GLUE's tokenized text is), and
every token of a word gets its word's class, so "is n't" -> ``n``, ``'``, ``t`` are all negation
and the pieces of "unfunny" all content. They come from short word lists, not a tagger (none is
available offline): ``special`` ([CLS], [SEP], ...), ``punctuation``, ``negation`` (not, n't,
no, never, ...), ``contrast`` (but, although, however, ...), ``function`` (articles, pronouns,
prepositions, auxiliaries, conjunctions) and ``content`` (everything else: nouns, verbs,
adjectives, adverbs, names, numbers). Some words are ambiguous ("no", "like", "while"); the lists
take their usual reading.
"""

import bisect
import re
import string
from dataclasses import dataclass
from pathlib import Path

import torch

NEGATION = {"not", "n't", "no", "never", "nor", "none", "nothing", "nobody", "neither", "nowhere", "without", "cannot"}
CONTRAST = {"but", "although", "though", "however", "yet", "despite", "whereas", "while", "unless", "except"}
FUNCTION = set(
    "a an the this that these those some any each every all both either my your his her its our their "
    "i me you he him she it we us they them who whom whose which what there here "
    "of to in on at by for with from into onto about as than like over under between through after before "
    "during against among around up down out off "
    "and or so if then because since when where how why "
    "is are was were be been being am do does did done have has had having "
    "will would shall should can could may might must 's 're 've 'd 'll 'm".split()
)
TOKEN_CLASSES = ("special", "punctuation", "negation", "contrast", "function", "content")


def word_class(word: str) -> str:
    """The class of one white-space-delimited word (see the module docstring)."""
    word = word.lower()
    if word and all(character in string.punctuation for character in word):
        return "punctuation"
    if word in NEGATION or word.endswith("n't"):
        return "negation"
    if word in CONTRAST:
        return "contrast"
    if word in FUNCTION:
        return "function"
    return "content"


def width_encoder(model):
    """The module whose ``output_widths`` gives the encoder layers' extents: the model, or its encoder."""
    if getattr(model.config, "model_type", None) != "dynconv":
        raise ValueError(
            f"only DynConv models have learned widths, got a {type(model).__name__} "
            f"(model_type {getattr(model.config, 'model_type', None)!r})"
        )
    return model.get_encoder() if model.config.is_encoder_decoder else model


@torch.inference_mode()
def collect_extents(model, batches: list[dict]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The learned extents of every real (unpadded) token, in eval mode (the training mode is restored).

    Args:
        model: a DynConv model with an encoder (``DynConvModel``, a head, or a seq2seq model), on any device.
        batches: dicts with ``input_ids`` and ``attention_mask`` [B, T] (and optionally ``token_type_ids``);
            ``labels`` are ignored, and a missing or ``None`` mask makes every token real.

    Returns:
        extents: one [N, H, 2] float32 tensor per encoder layer on the CPU, N real tokens over all
            batches in order, left and right extents in taps per head.
        token_ids: [N] the ids of those tokens.
    """
    encoder = width_encoder(model)
    was_training = model.training
    model.eval()
    per_layer, ids = None, []
    try:
        for batch in batches:
            inputs = {key: value.to(model.device) for key, value in batch.items() if key != "labels" and value is not None}
            widths = encoder(**inputs, output_widths=True).widths  # L x [B, T, H, 2]
            mask = inputs.get("attention_mask")
            real = torch.ones_like(inputs["input_ids"], dtype=torch.bool) if mask is None else mask.bool()
            kept = [w[real].float().cpu() for w in widths]
            per_layer = [[k] for k in kept] if per_layer is None else [p + [k] for p, k in zip(per_layer, kept)]
            ids.append(inputs["input_ids"][real].cpu())
    finally:
        model.train(was_training)
    if per_layer is None:
        raise ValueError("collect_extents needs at least one batch")
    return [torch.cat(p) for p in per_layer], torch.cat(ids)


@dataclass
class LayerWidths:
    """Mean learned extents of one conv layer over real tokens and heads, in taps."""

    stack: str  # "encoder" or "decoder"
    layer: int
    kernel_size: int
    mean_left: float
    mean_right: float

    @property
    def mean_fraction(self) -> float:
        """Mean (l + r) / (K - 1): the share of the kernel the layer uses."""
        return (self.mean_left + self.mean_right) / max(self.kernel_size - 1, 1)


def mean_extents(extents: torch.Tensor) -> tuple[float, float]:
    """The mean left and right extent of one layer's [N, H, 2] extents, over tokens and heads (in float64)."""
    if not extents.numel():
        raise ValueError("no real tokens to average the extents over")
    left, right = extents.double().reshape(-1, 2).mean(dim=0).tolist()
    return left, right


def conv_kernel_sizes(config) -> list[int]:
    """The kernel sizes of the encoder's conv layers, in the order of their extents (a hybrid
    encoder's attention layers have none)."""
    return [config.kernel_size[i] for i in config.conv_layers]


def summarize_extents(
    extents: list[torch.Tensor], kernel_sizes: list[int], stack: str = "encoder", layers: list[int] | None = None
) -> list[LayerWidths]:
    """Per layer, the mean left and right extents over the tokens and heads of :func:`collect_extents`'
    output; ``layers`` are the layers' indices (default 0, 1, ...; a hybrid's conv layers skip some)."""
    layers = range(len(extents)) if layers is None else layers
    return [LayerWidths(stack, i, k, *mean_extents(e)) for i, e, k in zip(layers, extents, kernel_sizes)]


def summarize_widths(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None
) -> list[LayerWidths]:
    """Mean left/right extents of every encoder layer over the real tokens of a batch [B, T].

    Without a mask every token is real; ``token_type_ids`` are the segments of sentence pairs. Works with any DynConv encoder model (``DynConvModel`` and its
    heads, or the encoder of ``DynConvForConditionalGeneration``); runs in eval mode and restores the
    training mode.
    """
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
    extents, _ = collect_extents(model, [batch])
    return summarize_extents(extents, conv_kernel_sizes(model.config), layers=model.config.conv_layers)


def format_widths(summary: list[LayerWidths]) -> str:
    """A markdown table of a width summary, for logs and model cards."""
    rows = ["| layer | K | mean left | mean right | share of K used |", "|---:|---:|---:|---:|---:|"]
    rows += [
        f"| {w.stack} {w.layer} | {w.kernel_size} | {w.mean_left:.2f} | {w.mean_right:.2f} | {w.mean_fraction:.0%} |"
        for w in summary
    ]
    return "\n".join(rows)


def mean_width_fractions(extents: list[torch.Tensor], kernel_sizes: list[int]) -> list[float]:
    """Per layer, the mean of (left + right) / (K - 1) over tokens and heads: the share of the kernel in use."""
    return [layer.mean_fraction for layer in summarize_extents(extents, kernel_sizes)]


def head_means(extents: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The left and right extents of every token averaged over heads: two [L, N] tensors (L layers, N tokens)."""
    grid = torch.stack([e.float().mean(dim=1) for e in extents])  # [L, N, 2]
    return grid[..., 0], grid[..., 1]


def token_classes(tokenizer, texts: list[list[str]], max_length: int) -> list[str]:
    """The class of every token the model sees, in :func:`collect_extents`' order (texts as for
    :func:`encode_batches`, with the same ``max_length``); special tokens are ``special``."""
    classes = []
    for example in zip(*texts):
        encoding = tokenizer(*example, truncation=True, max_length=max_length, return_offsets_mapping=True)
        words = [[(m.start(), m.end(), word_class(m.group())) for m in re.finditer(r"\S+", text)] for text in example]
        starts = [[start for start, _, _ in spans] for spans in words]
        for sequence, (start, _) in zip(encoding.sequence_ids(), encoding["offset_mapping"]):
            if sequence is None:
                classes.append("special")
            else:  # the word that holds the token's first character
                classes.append(words[sequence][bisect.bisect_right(starts[sequence], start) - 1][2])
    return classes


def extents_by_token_class(extents: list[torch.Tensor], classes: list[str]) -> dict[str, dict]:
    """Per token class: its token count and, per layer, the mean left and right extents (taps, over heads)."""
    if len(classes) != len(extents[0]):
        raise ValueError(f"{len(classes)} token classes for {len(extents[0])} tokens: encode both alike")
    summary = {}
    for name in TOKEN_CLASSES:
        rows = torch.tensor([c == name for c in classes])
        if rows.any():
            means = [mean_extents(e[rows]) for e in extents]
            summary[name] = dict(
                tokens=int(rows.sum()),
                left=[left for left, _ in means],
                right=[right for _, right in means],
            )
    return summary


def token_class_markdown(summary: dict[str, dict], kernel_sizes: list[int]) -> str:
    header = "| class | tokens | " + " | ".join(f"layer {i} (K={k})" for i, k in enumerate(kernel_sizes)) + " |"
    lines = [
        "Mean left / right extent in taps (over heads) per token class and layer",
        "",
        header,
        "|---|---:|" + "---:|" * len(kernel_sizes),
    ]
    for name, row in summary.items():
        cells = [f"{left:.1f} / {right:.1f}" for left, right in zip(row["left"], row["right"])]
        lines.append(f"| {name} | {row['tokens']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_extent_histograms(extents: list[torch.Tensor], kernel_sizes: list[int], path) -> Path:
    """A PNG with one panel per layer: the histogram of left + right extents over real tokens and heads."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3 * len(extents), 2.8), layout="constrained")
    axes = fig.subplots(1, len(extents), squeeze=False)[0]
    for i, (ax, layer, k) in enumerate(zip(axes, extents, kernel_sizes)):
        width = layer.sum(-1).flatten().numpy()
        ax.hist(width, bins=min(40, 4 * k), range=(0, k - 1), color="tab:blue")
        ax.axvline(width.mean(), color="tab:red", linestyle="--", label=f"mean {width.mean():.1f}")
        ax.set_title(f"layer {i}, K = {k}", fontsize=10)
        ax.set_xlabel("left + right extent (taps)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("tokens x heads")
    fig.suptitle("Learned widths over the real tokens")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def encode_batches(tokenizer, texts: list[list[str]], max_length: int, batch_size: int = 64) -> list[dict]:
    """Texts (one list per text column: one for single sentences, two for pairs) as padded tensor batches."""
    batches = []
    for start in range(0, len(texts[0]), batch_size):
        chunk = [column[start : start + batch_size] for column in texts]
        batches.append(
            dict(tokenizer(*chunk, truncation=True, max_length=max_length, padding=True, return_tensors="pt"))
        )
    return batches


def _recording(method, record: list[int]):
    def active_taps(*args, **kwargs):
        taps = method(*args, **kwargs)
        record.append(len(taps))
        return taps

    return active_taps


@torch.inference_mode()
def kept_taps(model, batches: list[dict]) -> list[float]:
    """Per encoder layer, the mean number of taps that CPU trimming keeps per batch (all K for fixed width).

    Trimming keeps the taps that the widest real token of the batch needs, so this, not the mean
    width, is what sets a layer's cost on the CPU.
    """
    from dynconv_nlp.layers.dynamic_conv import DynamicConv1d

    encoder = width_encoder(model)
    convs = [module for module in encoder.modules() if isinstance(module, DynamicConv1d)]
    counts = [[] for _ in convs]
    for conv, record in zip(convs, counts):
        conv.active_taps = _recording(conv.active_taps, record)  # an instance attribute shadows the method
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            model(**{key: value.to(model.device) for key, value in batch.items() if key != "labels"})
    finally:
        model.train(was_training)
        for conv in convs:
            del conv.active_taps
    return [sum(c) / len(c) if c else float(conv.kernel_size) for c, conv in zip(counts, convs)]
