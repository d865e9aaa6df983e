from pathlib import Path

import pytest
import torch
from dynconv_testing import import_script, sentences, teacher_config
from transformers import AutoModel

from dynconv_nlp.data.tokenizer import train_tokenizer


@pytest.fixture
def load_script():
    """Import scripts/NAME.py or benchmarks/**/NAME.py as a module, so its main() can be called in-process."""
    return import_script


# A GLUE download in miniature, in the original TSV layouts (SST-2's and RTE's headers, MRPC's byte-order mark,
# CoLA without a header, STS-B's ten columns), with a train and a dev file per task and a clear majority class
# in each train file. For tests that plan runs or read a few rows, so that they need no ../shared/data/glue.
_SST2 = "sentence\tlabel\n"
_RTE = "index\tsentence1\tsentence2\tlabel\n"
_MRPC = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
_STSB = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
TINY_GLUE = {
    "SST-2": {
        "train.tsv": _SST2 + "a charming and often affecting journey . \t1\nthe plot is dull and lifeless . \t0\n"
        "an engaging , funny film . \t1\n",
        "dev.tsv": _SST2 + "a delight from start to end . \t1\nfar too long and far too slow . \t0\n"
        "a clever , witty script . \t1\nwonderful acting . \t1\n",
    },
    "CoLA": {
        "train.tsv": "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\ngj04\t0\t*\tThe rope stretched pulley.\n"
        "gj04\t1\t\tThe weights made the rope stretch over the pulley.\n",
        "dev.tsv": "gj04\t1\t\tThe cat sat on the mat.\ngj04\t0\t*\tSat the mat cat on.\ngj04\t1\t\tA dog ran.\n",
    },
    "MRPC": {
        "train.tsv": _MRPC + "1\t1\t2\tHe said it would rain.\tHe said rain was coming.\n"
        "0\t3\t4\tThe shares fell.\tThe company hired a chef.\n1\t5\t6\tShe won the race.\tShe came first.\n",
        "dev.tsv": _MRPC + "1\t7\t8\tThe house is small.\tThe home is not big.\n0\t9\t10\tIt snowed.\tPrices rose.\n"
        "1\t11\t12\tHe left early.\tHe went home early.\n1\t13\t14\tThe film was long.\tThe movie was lengthy.\n",
    },
    "STS-B": {
        "train.tsv": _STSB + "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA man is dancing.\tA man dances.\t5.000\n"
        "1\tmain-captions\tMSRvid\t2012test\t0002\tnone\tnone\tA cat sleeps.\tA plane lands.\t0.200\n",
        "dev.tsv": _STSB + "0\tmain-captions\tMSRvid\t2012test\t0003\tnone\tnone\tA dog runs.\tA dog is running.\t4.800\n"
        "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA girl sings.\tA man cooks.\t0.500\n",
    },
    "RTE": {
        "train.tsv": _RTE + "0\tThe cat sat on the mat.\tA cat sat.\tentailment\n"
        "1\tIt rained all day in Paris.\tParis was wet.\tentailment\n"
        "2\tThe shop closed in 1990.\tThe shop is open.\tnot_entailment\n",
        "dev.tsv": _RTE + "0\tHe sold his car.\tHe owns the car.\tnot_entailment\n"
        "1\tThe river froze.\tThe river was cold.\tentailment\n"
        "2\tShe wrote two books.\tShe wrote ten books.\tnot_entailment\n",
    },
}


def write_tiny_glue(path: Path) -> Path:
    """Write :data:`TINY_GLUE` under ``path`` (SST-2/train.tsv, ...) and return ``path``."""
    for folder, files in TINY_GLUE.items():
        (path / folder).mkdir(parents=True)
        for name, text in files.items():
            (path / folder / name).write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tiny_glue_dir(tmp_path) -> Path:
    """A GLUE folder with a few rows of SST-2, CoLA, MRPC, STS-B and RTE (see TINY_GLUE)."""
    return write_tiny_glue(tmp_path / "glue")


# Tiny random BERT-family teachers for the distillation tests, saved as a user's checkpoint folders.
@pytest.fixture(scope="session")
def tokenizer():
    """A WordPiece tokenizer of the tiny teachers, trained on :func:`sentences`."""
    return train_tokenizer(sentences(300), vocab_size=120)


@pytest.fixture(scope="session")
def teachers(tmp_path_factory, tokenizer) -> dict[str, Path]:
    """Each architecture's teacher saved with the tokenizer, as a user's checkpoint folder would be."""
    folders = {}
    for architecture in ("bert", "roberta", "electra"):
        torch.manual_seed(0)
        model = AutoModel.from_config(teacher_config(architecture, tokenizer))
        folder = tmp_path_factory.mktemp(architecture)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        folders[architecture] = folder
    return folders


@pytest.fixture(scope="session")
def text_file(tmp_path_factory) -> Path:
    """600 generated sentences, one a line: the tiny teachers' distillation text."""
    path = tmp_path_factory.mktemp("text") / "train.txt"
    path.write_text("\n".join(sentences(600, seed=1)) + "\n")
    return path
