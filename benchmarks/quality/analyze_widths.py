"""Where does a trained DynConv encoder look? Learned extents per layer and per token class, on dev text.

    python benchmarks/quality/analyze_widths.py outputs/quality/glue-sst2-adaptive-seed1 --glue_dir ../shared/data/glue \
        --task_name sst2 --output_dir benchmarks/quality/widths_sst2
    python benchmarks/quality/analyze_widths.py path/to/model --text_file sentences.txt --output_dir widths/

Writes to ``--output_dir``:
    width_histograms.png     per layer, the histogram of left + right extents over real tokens and heads
    widths.png               heatmaps of the extents of the first ``--examples`` texts, token by token
                             (of a sentence pair, the first sentence alone)
    width_by_token_class.md  mean left / right extents per token class (dynconv_nlp.analysis) and layer
    widths.json              the same numbers, and the share of each layer's kernel in use
"""

import argparse
import json
import sys
from pathlib import Path

from transformers import AutoModel, AutoTokenizer

import dynconv_nlp  # noqa: F401  registers "dynconv" with the Auto classes
from dynconv_nlp.analysis import (
    collect_extents,
    conv_kernel_sizes,
    encode_batches,
    extents_by_token_class,
    mean_width_fractions,
    plot_extent_histograms,
    token_class_markdown,
    token_classes,
)
from dynconv_nlp.data.classification import load_classification_data
from dynconv_nlp.data.text import load_text_file
from dynconv_nlp.plotting import plot_widths
from dynconv_nlp.benchmarking.runs import portable
from dynconv_nlp.cli import ArgumentParser, exit_on_expected_errors
from dynconv_nlp.errors import UsageError


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a saved DynConv model folder with its tokenizer")
    parser.add_argument("--glue_dir", help="read the dev split of --task_name from GLUE in the TSV layout")
    parser.add_argument("--task_name", help="a GLUE task, e.g. sst2")
    parser.add_argument("--text_file", type=Path, help="or: one text per line (gzip allowed), or CSV/TSV/JSON lines")
    parser.add_argument("--max_texts", type=int, default=2000, help="analyse at most this many texts")
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--examples", type=int, default=4, help="texts in the token-by-token heatmap")
    parser.add_argument("--output_dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if bool(args.task_name) == bool(args.text_file):
        raise UsageError("pass --task_name (with --glue_dir for local GLUE files) or --text_file, one of them")
    if not (args.model / "config.json").is_file():
        raise UsageError(f"{args.model} holds no config.json: pass a folder written by save_pretrained")
    return args


def load_texts(args) -> list[list[str]]:
    """One list per text column (two for sentence pairs), at most --max_texts texts."""
    if args.text_file:
        return [load_text_file(args.text_file)["text"][: args.max_texts]]
    data = load_classification_data(args.task_name, args.glue_dir)
    split = data.splits[data.eval_splits[0]]
    return [split[column][: args.max_texts] for column in data.text_columns]


@exit_on_expected_errors
def main(argv=None) -> int:
    args = parse_args(argv)
    model = AutoModel.from_pretrained(args.model)
    if model.config.model_type != "dynconv" or model.config.width_mode != "adaptive":
        raise UsageError(f"{args.model} is not a DynConv model with adaptive widths: it has no extents to analyse")
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    texts = load_texts(args)
    if not texts[0]:
        raise UsageError("no texts to analyse")

    extents, token_ids = collect_extents(model, encode_batches(tokenizer, texts, args.max_length))
    kernel_sizes = conv_kernel_sizes(model.config)
    by_class = extents_by_token_class(extents, token_classes(tokenizer, texts, args.max_length))
    fractions = mean_width_fractions(extents, kernel_sizes)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    plot_extent_histograms(extents, kernel_sizes, args.output_dir / "width_histograms.png")
    examples = texts[0][: args.examples]
    plot_widths(model, tokenizer, examples, args.output_dir / "widths.png")
    table = token_class_markdown(by_class, kernel_sizes)
    share = ", ".join(f"layer {i} {f:.0%}" for i, f in enumerate(fractions))
    text = f"{len(texts[0])} texts, {len(token_ids)} tokens; share of K - 1 in use: {share}\n\n{table}"
    (args.output_dir / "width_by_token_class.md").write_text(text + "\n")
    summary = dict(model=portable(args.model), texts=len(texts[0]), tokens=len(token_ids), kernel_sizes=kernel_sizes,
                   width_fraction_per_layer=fractions, by_token_class=by_class)  # fmt: skip
    (args.output_dir / "widths.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
