"""Raw text for pretraining and distillation: local files, GLUE training splits, or a Hub dataset.

Every source becomes one ``text`` column. Plain text files (``.txt``, gzip allowed, read by magic
bytes) hold one text a line; CSV, TSV and JSON-lines files name their column with ``text_column``
(or have one called ``text`` or ``sentence``). ``glue_tasks`` reads only the *training* split of
each task from ``glue_dir``, both sentences of pair tasks, so that pretraining never sees the dev
or test text it is later evaluated on. With ``glue_pairs`` the two sentences of a pair task stay one
example (``text`` and ``text_pair``, tokenized as a pair with its segment ids), as a model fine-tuned
on the task reads them; every other text has ``text_pair`` None.

``add_text_options``, ``load_text_splits`` and ``tokenize_texts`` are the command line, loading
and tokenization that ``run_mlm.py`` and ``distill_to_dynconv.py`` share (those of transformers'
``run_mlm_no_trainer.py``).
"""

import argparse
import itertools
from pathlib import Path

import datasets

from ..errors import UsageError, first_line
from .files import FORMATS, load_data_files
from .glue import get_task, load_glue
from .translation import read_lines

TEXT_COLUMNS = ("text", "sentence")


def load_text_file(path: str | Path, text_column: str | None = None, encoding: str = "utf-8") -> datasets.Dataset:
    """One local file as a ``text`` column, empty texts dropped."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in FORMATS:
        dataset = load_data_files({"train": str(path)}, encoding)["train"]
        column = text_column or next((c for c in TEXT_COLUMNS if c in dataset.column_names), None)
        if column not in dataset.column_names:
            raise UsageError(
                f"{path} has no column {column or ' or '.join(TEXT_COLUMNS)} (columns: {', '.join(dataset.column_names)}); "
                "name the text with --text_column"
            )
        texts = [str(text) for text in dataset[column] if text is not None]
    else:
        texts = read_lines(path, encoding)
    texts = [text.strip() for text in texts if text.strip()]
    if not texts:
        raise UsageError(f"{path} has no text")
    return datasets.Dataset.from_dict({"text": texts})


def load_glue_training_text(
    glue_dir: str | Path, task_names: list[str], encoding: str = "utf-8", pairs: bool = False
) -> datasets.Dataset:
    """The texts of the training splits of ``task_names`` in a GLUE folder: every sentence of a pair on
    its own, or with ``pairs`` each pair as one example (columns ``text``, ``text_pair``)."""
    texts, text_pairs = [], []
    for name in task_names:
        task = get_task(name)
        splits = load_glue(task, Path(glue_dir), encoding)
        if "train" not in splits:
            raise UsageError(f"--glue_dir {glue_dir} has no training split for {name} (train.tsv); leave the task out")
        train = splits["train"]
        if pairs and len(task.text_columns) == 2:
            for first, second in zip(*(train[column] for column in task.text_columns)):
                if first and first.strip() and second and second.strip():
                    texts.append(first.strip())
                    text_pairs.append(second.strip())
            continue
        for column in task.text_columns:
            new = [text.strip() for text in train[column] if text and text.strip()]
            texts += new
            text_pairs += [None] * len(new)
    if not pairs:
        return datasets.Dataset.from_dict({"text": texts})
    return with_text_pairs(datasets.Dataset.from_dict({"text": texts, "text_pair": text_pairs}))


def with_text_pairs(dataset: datasets.Dataset) -> datasets.Dataset:
    """``dataset`` with a string column ``text_pair`` (None where it had none), so that it concatenates with pairs."""
    if "text_pair" not in dataset.column_names:
        dataset = dataset.add_column("text_pair", [None] * len(dataset))
    return dataset.cast_column("text_pair", datasets.Value("string"))


def load_text_corpus(
    train_files: list[str] | None = None,
    glue_dir: str | None = None,
    glue_tasks: list[str] | None = None,
    validation_file: str | None = None,
    text_column: str | None = None,
    encoding: str = "utf-8",
    glue_pairs: bool = False,
) -> datasets.DatasetDict:
    """"train" (every local source, concatenated) and, with ``validation_file``, "validation"."""
    parts = [load_text_file(path, text_column, encoding) for path in train_files or []]
    if glue_tasks:
        parts.append(load_glue_training_text(glue_dir, glue_tasks, encoding, glue_pairs))
    splits = {"train": parts}
    if validation_file:
        splits["validation"] = [load_text_file(validation_file, text_column, encoding)]
    if glue_pairs:
        splits = {split: [with_text_pairs(part) for part in split_parts] for split, split_parts in splits.items()}
    return datasets.DatasetDict({split: datasets.concatenate_datasets(p) for split, p in splits.items()})


def add_text_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The "data" options: where the text comes from, how it is cut into examples."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", help="a Hub dataset with a text column, e.g. wikitext")
    data.add_argument("--dataset_config_name")
    data.add_argument("--train_file", nargs="+", help="text (one per line, gzip allowed), CSV, TSV or JSON lines")
    data.add_argument("--glue_dir", help="a GLUE folder (SST-2/, CoLA/, ...): see --glue_tasks")
    data.add_argument("--glue_tasks", nargs="+", help="train on these tasks' training splits, e.g. cola sst2")
    data.add_argument("--glue_pairs", action="store_true",
                      help="keep the two sentences of a pair task together, tokenized as a pair (with --line_by_line)")
    data.add_argument("--validation_file")
    data.add_argument("--validation_split_percentage", type=float, default=5.0,
                      help="without --validation_file, hold out this share of the training texts")
    data.add_argument("--text_column", help="the text column of CSV / TSV / JSON files (default: text or sentence)")
    data.add_argument("--encoding", default="utf-8")
    data.add_argument("--max_seq_length", type=int, default=128, help="tokens per block (or per text, line by line)")
    data.add_argument("--line_by_line", action="store_true", help="one text per example instead of grouped blocks")
    data.add_argument("--pad_to_max_length", action="store_true",
                      help="with --line_by_line, pad every text to --max_seq_length (fixed shapes)")
    data.add_argument("--max_train_samples", type=int, help="use only the first N blocks")
    data.add_argument("--max_eval_samples", type=int)
    return data


def check_text_options(args: argparse.Namespace) -> None:
    """Raise :class:`UsageError` for data options that do not go together."""
    local = bool(args.train_file or args.glue_tasks)
    if bool(args.dataset_name) == local:
        raise UsageError("pass --dataset_name (the Hub) or local text (--train_file and/or --glue_dir with --glue_tasks)")
    if bool(args.glue_dir) != bool(args.glue_tasks):
        raise UsageError("--glue_dir and --glue_tasks go together")
    if args.dataset_name and args.validation_file:
        raise UsageError("--dataset_name brings its own splits: leave out --validation_file")
    if not 0 < args.validation_split_percentage < 100:
        raise UsageError(f"--validation_split_percentage must be in (0, 100), got {args.validation_split_percentage}")
    if args.glue_pairs and not (args.glue_tasks and args.line_by_line):
        raise UsageError("--glue_pairs keeps GLUE sentence pairs as examples: it needs --glue_tasks and --line_by_line")
    if args.pad_to_max_length and not args.line_by_line:
        raise UsageError("--pad_to_max_length goes with --line_by_line (grouped blocks are all --max_seq_length long)")


def load_text_splits(args: argparse.Namespace) -> datasets.DatasetDict:
    """"train" and "validation", each a ``text`` column, from the options of :func:`add_text_options`."""
    if args.dataset_name:
        try:
            splits = datasets.load_dataset(args.dataset_name, args.dataset_config_name)
        except Exception as error:  # offline, or no such dataset
            reason = first_line(error)
            raise UsageError(f"could not load {args.dataset_name} ({reason}); for local text pass --train_file") from None
        column = args.text_column or "text"
        if column not in splits["train"].column_names:
            raise UsageError(f"{args.dataset_name} has no {column!r} column ({', '.join(splits['train'].column_names)}); "
                             "pass --text_column")
        splits = datasets.DatasetDict({k: v.select_columns([column]).rename_column(column, "text") for k, v in splits.items()})
    else:
        splits = load_text_corpus(args.train_file, args.glue_dir, args.glue_tasks, args.validation_file,
                                  args.text_column, args.encoding, args.glue_pairs)
    if len(splits["train"]) < 2:
        raise UsageError(f"the training text has {len(splits['train'])} non-empty texts: there is nothing to learn from")
    if "validation" not in splits:
        # Held out before tokenization, with the run's seed: the same texts on every process and resume.
        held_out = splits["train"].train_test_split(test_size=args.validation_split_percentage / 100, seed=args.seed)
        splits = datasets.DatasetDict(train=held_out["train"], validation=held_out["test"])
    return splits


def tokenize_texts(args, splits: datasets.DatasetDict, tokenizer, accelerator, **tokenizer_options) -> dict[str, datasets.Dataset]:
    """Token ids per split: one example per text (``--line_by_line``) or blocks of ``--max_seq_length``
    tokens; ``tokenizer_options`` go to every tokenizer call."""
    def encode(batch):
        if not args.line_by_line:
            return tokenizer(batch["text"], **tokenizer_options)
        options = dict(truncation=True, max_length=args.max_seq_length,
                       padding="max_length" if args.pad_to_max_length else False, **tokenizer_options)
        pairs = batch.get("text_pair") or [None] * len(batch["text"])
        # Pairs and single texts in separate calls (a pair's second text may not be None), then in order again.
        kinds = {kind: [i for i, pair in enumerate(pairs) if (pair is None) == (kind == "single")] for kind in ("single", "pair")}
        encoded = {}
        for kind, rows in kinds.items():
            if not rows:
                continue
            texts = [batch["text"][i] for i in rows]
            second = [pairs[i] for i in rows] if kind == "pair" else None
            for key, values in tokenizer(texts, second, **options).items():
                encoded.setdefault(key, [None] * len(pairs))
                for i, value in zip(rows, values):
                    encoded[key][i] = value
        return encoded

    def group(batch):
        """Concatenate every text of the batch, then cut blocks; the remainder shorter than a block is dropped."""
        joined = {key: list(itertools.chain.from_iterable(batch[key])) for key in batch}
        total = len(joined["input_ids"]) // args.max_seq_length * args.max_seq_length
        return {key: [ids[i : i + args.max_seq_length] for i in range(0, total, args.max_seq_length)]
                for key, ids in joined.items()}

    encoded = {}
    with accelerator.main_process_first():  # the main process fills the cache, the others read it
        for split, dataset in splits.items():
            ids = dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc=f"tokenizing {split}")
            if not args.line_by_line:
                ids = ids.map(group, batched=True, batch_size=1000, desc=f"grouping {split} into blocks")
            limit = args.max_train_samples if split == "train" else args.max_eval_samples
            if limit is not None:
                ids = ids.select(range(min(limit, len(ids))))
            if len(ids) == 0:
                raise UsageError(f"the {split} text makes no block of {args.max_seq_length} tokens: "
                                 "lower --max_seq_length or pass --line_by_line")
            encoded[split] = ids
    return encoded
