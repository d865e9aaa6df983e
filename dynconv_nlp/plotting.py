"""Heatmaps of the learned widths: how far each token looks left and right in every encoder layer.

``scripts/run_glue.py --plot_widths`` calls :func:`plot_widths` after fine-tuning. matplotlib is an
optional dependency (``pip install 'dynconv_nlp[plots]'``), so it is imported only when a plot is drawn,
and the figure is drawn on a ``matplotlib.figure.Figure`` without pyplot: that renders with Agg, works
headless, and leaves the user's pyplot backend and open figures alone.
"""

from pathlib import Path

import torch

from dynconv_nlp.analysis import collect_extents, head_means, width_encoder

# The tokenizer outputs the encoders read, passed as a training script passes them (token types included,
# since a model fine-tuned with them adds their embedding); anything else a tokenizer returns is left out.
_ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def width_grid(model, tokenizer, text: str, max_tokens: int = 40) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """The learned extents of every encoder layer for one text, averaged over heads.

    The text is tokenized with its special tokens and truncated to ``max_tokens`` tokens; the model
    sees exactly the tokens that are returned. The model runs in eval mode (no dropout in the widths)
    and gets its training mode back afterwards.

    Returns:
        tokens: the T token strings, e.g. ``["[CLS]", "the", "cat", ..., "[SEP]"]``.
        left, right: [L, T] float32 on the CPU, extents in taps for L encoder layers.
    """
    encoding = tokenizer(text, truncation=True, max_length=max_tokens, return_tensors="pt")
    extents, _ = collect_extents(model, [{name: encoding[name] for name in _ENCODER_INPUTS if name in encoding}])
    left, right = head_means(extents)  # one text, unpadded: every token is real
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"][0].tolist())
    return tokens, left, right


def plot_widths(model, tokenizer, texts: list[str], path, max_tokens: int = 40) -> Path:
    """Save a PNG heatmap of the learned left/right extents of every encoder layer for a few texts.

    One row per text, two panels per row: the left extent and the right extent, each with layers on
    the y axis (labelled with their kernel size K) and the text's tokens (special tokens included,
    at most ``max_tokens``) on the x axis; rows share the x range of the longest text, so cells have
    one width. A cell's colour is the extent in taps averaged over heads. Each kind has one colour
    scale, from 0 to its largest value over all texts, so that rows can be compared; a colourbar per
    kind gives the taps.

    Args:
        model: a DynConv model on any device: ``DynConvModel``, a head such as
            ``DynConvForSequenceClassification``, or ``DynConvForConditionalGeneration`` (its encoder).
        tokenizer: the model's tokenizer.
        texts: a few texts (one row each, so keep it to about 4).
        path: where to write the PNG; missing parent folders are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    if not texts:
        raise ValueError("plot_widths needs at least one text")
    width_encoder(model)  # fail on a non-DynConv model before matplotlib is needed
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("plotting the widths needs matplotlib: pip install 'dynconv_nlp[plots]'") from error

    grids = [width_grid(model, tokenizer, text, max_tokens) for text in texts]
    kinds = {"left": [g[1] for g in grids], "right": [g[2] for g in grids]}
    num_layers = grids[0][1].shape[0]
    layer_labels = [f"{i} (K={model.config.kernel_size[i]})" for i in model.config.conv_layers]
    longest = max(len(g[0]) for g in grids)
    # Sizes in inches: a token column must fit its rotated label's height, a layer row its label.
    fig = Figure(
        figsize=(2 * (1.5 + 0.22 * longest) + 1.5, len(texts) * (1.3 + 0.3 * num_layers) + 0.5),
        layout="constrained",
    )
    fig.suptitle("Learned extents per token and layer (mean over heads)")
    axes = fig.subplots(len(texts), 2, squeeze=False)
    for column, (kind, values) in enumerate(kinds.items()):
        # `or 1.0`: a model whose extents are all 0 still gets a valid colour scale.
        vmax = max(float(v.max()) for v in values) or 1.0
        for row, ((tokens, _, _), grid) in enumerate(zip(grids, values)):
            ax = axes[row, column]
            image = ax.imshow(grid.numpy(), aspect="auto", cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest")
            ax.set_title(f"text {row + 1}: {kind} extent", fontsize=10)
            ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
            # Every row spans the longest text, so that a token's cell has the same width in all rows.
            ax.set_xlim(-0.5, longest - 0.5)
            ax.set_yticks(range(num_layers), layer_labels, fontsize=8)
            ax.set_ylabel("layer")
        fig.colorbar(image, ax=axes[:, column], label=f"{kind} extent (taps)", shrink=0.9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # "tight" keeps the last row's long token labels inside the image.
    fig.savefig(path, format="png", dpi=100, bbox_inches="tight")
    return path
