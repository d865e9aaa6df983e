"""What a trained DynConv encoder does with its widths: the extents of every real token, by layer and token class.

    extents, token_ids = collect_extents(model, batches)   # L x [N, H, 2], [N] over the real tokens
    classes = token_classes(tokenizer, texts, max_length)   # N class names, in the same order
    by_class = extents_by_token_class(extents, classes)
    plot_extent_histograms(extents, model.config.kernel_size, "width_histograms.png")

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


@torch.inference_mode()
def collect_extents(model, batches: list[dict]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The learned extents of every real (unpadded) token, in eval mode.

    Args:
        model: a DynConv model with an encoder (``DynConvModel``, a head, or a seq2seq model).
        batches: dicts with ``input_ids`` and ``attention_mask`` [B, T] (and optionally ``token_type_ids``).

    Returns:
        extents: one [N, H, 2] float32 tensor per encoder layer, N real tokens over all batches,
            left and right extents in taps per head.
        token_ids: [N] the ids of those tokens.
    """
    encoder = model.get_encoder() if model.config.is_encoder_decoder else model
    was_training = model.training
    model.eval()
    per_layer, ids = None, []
    try:
        for batch in batches:
            inputs = {key: value.to(model.device) for key, value in batch.items() if key != "labels"}
            widths = encoder(**inputs, output_widths=True).widths  # L x [B, T, H, 2]
            real = inputs["attention_mask"].bool()
            kept = [w[real].float().cpu() for w in widths]
            per_layer = [[k] for k in kept] if per_layer is None else [p + [k] for p, k in zip(per_layer, kept)]
            ids.append(inputs["input_ids"][real].cpu())
    finally:
        model.train(was_training)
    if per_layer is None:
        raise ValueError("collect_extents needs at least one batch")
    return [torch.cat(p) for p in per_layer], torch.cat(ids)


def mean_width_fractions(extents: list[torch.Tensor], kernel_sizes: list[int]) -> list[float]:
    """Per layer, the mean of (left + right) / (K - 1) over tokens and heads: the share of the kernel in use."""
    return [float(e.sum(-1).mean()) / max(k - 1, 1) for e, k in zip(extents, kernel_sizes)]


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
            summary[name] = dict(
                tokens=int(rows.sum()),
                left=[float(e[rows, :, 0].mean()) for e in extents],
                right=[float(e[rows, :, 1].mean()) for e in extents],
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

    encoder = model.get_encoder() if model.config.is_encoder_decoder else model
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
