"""Parameter counts, for matching the sizes of the models a study compares."""

import torch
from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def config_parameters(config, seq2seq: bool = False) -> int:
    """Parameters of the sequence classifier (or, with ``seq2seq``, the translation model) ``config`` makes."""
    with torch.device("meta"):  # counts need shapes only
        auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForSequenceClassification
        return count_parameters(auto.from_config(config))
