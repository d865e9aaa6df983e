import os

import torch

# Without a GPU, Triton kernels run in its interpreter. The variable must be set before triton is
# first imported (transformers may import it), hence before everything below.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
from dynconv_testing import CORPUS, tiny_config  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from dynconv_nlp import DynConvForSequenceClassification  # noqa: E402

from dynconv_nlp.data.tokenizer import train_tokenizer  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    """A saved BERT-style WordPiece tokenizer: [CLS] a [SEP] b [SEP], lower-cased."""
    path = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(CORPUS, vocab_size=200).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture
def model(tokenizer):
    """A tiny random two-label DynConv classifier with the tokenizer's vocabulary."""
    torch.manual_seed(0)
    return DynConvForSequenceClassification(tiny_config(vocab_size=len(tokenizer), num_labels=2))
