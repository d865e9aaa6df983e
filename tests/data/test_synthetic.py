"""The generated negation_scope task: determinism, sizes, balance, disjoint splits, the labelling rule, and that a
bag of words cannot solve it (the labels need context)."""

import json
import os
import subprocess
import sys

import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from dynconv_nlp.data import synthetic
from dynconv_nlp.data.synthetic import LABEL_NAMES, generate_negation_scope, label_of, negation_scope_splits

_POSITIVE = set(synthetic._POSITIVE_ADJECTIVES) | {form for verb in synthetic._POSITIVE_VERBS for form in verb}
_NEGATIVE = set(synthetic._NEGATIVE_ADJECTIVES) | {form for verb in synthetic._NEGATIVE_VERBS for form in verb}
_NEGATORS = {"not", "n't", "never", "hardly", "barely", "no_longer"}
_INTENSIFIERS = {"very", "extremely", "incredibly", "remarkably", "truly", "absolutely", "thoroughly"}
_DIMINISHERS = {"slightly", "somewhat", "mildly", "a_bit", "a_little"}
# Every word the generator may use besides sentiment words.
_NEUTRAL = {
    word
    for phrase in (
        *synthetic._SINGULAR_SUBJECTS, *synthetic._PLURAL_SUBJECTS, *synthetic._NEGATED_ADJECTIVE_FILLERS,
        *synthetic._NEGATED_VERB_FILLERS, *synthetic._PLAIN_FILLERS,
        *(p.split() for p in synthetic._NEGATORS + synthetic._ADJECTIVE_INTENSIFIERS + synthetic._VERB_INTENSIFIERS),
        *(p.split() for p in synthetic._ADJECTIVE_DIMINISHERS + synthetic._VERB_DIMINISHERS + synthetic._ADVERBS),
        "is was are were seems seemed seem feels felt feel did i we , and but yet although though while".split(),
    )
    for word in phrase
}  # fmt: skip


def _reference_score(sentence):
    """The module docstring's rule, written independently: split into clauses, drop the ones that do not count, then
    let each sentiment word look back over its own stretch of the clause for a negator and a modifier."""
    for phrase in ("no longer", "a bit", "a little"):
        sentence = sentence.replace(phrase, phrase.replace(" ", "_"))
    words = sentence.split()
    for contrast in ("but", "yet"):
        if contrast in words:
            words = words[len(words) - words[::-1].index(contrast) :]
    segments = " ".join(words).split(",")
    kept = [s for s in segments if not s.split() or s.split()[0] not in ("although", "though", "while")]
    score = 0
    for clause in " and ".join(kept).split(" and "):
        stretch = []
        for word in clause.split():
            if word in _POSITIVE or word in _NEGATIVE:
                weight = 4 if set(stretch) & _INTENSIFIERS else 1 if set(stretch) & _DIMINISHERS else 2
                sign = (1 if word in _POSITIVE else -1) * (-1 if set(stretch) & _NEGATORS else 1)
                score += sign * weight
                stretch = []
            else:
                stretch.append(word)
    return score


@pytest.mark.parametrize(
    "sentence, label",
    [
        ("the plot was boring", 0),
        ("we loved the ending", 1),
        ("the plot was not boring", 1),  # negation at distance 1
        ("the acting was n't convincing", 0),
        ("the acting was no longer convincing", 0),  # a two-word negator
        ("the plot was not at all really that boring", 1),  # negation at distance 5
        ("i did not for one second really enjoy the film", 0),  # ... and 5 before a verb
        ("the plot was very dull and the acting was convincing", 0),  # intensified: -4 + 2
        ("the plot was slightly dull and the acting was convincing", 1),  # diminished: -1 + 2
        ("the film was not great and the ending was very moving", 1),  # the negator ends with its clause: -2 + 4
        ("the songs were not very good and the jokes were a bit silly", 0),  # -4 - 1
        ("the plot was good , but the acting was wooden", 0),  # only the clause after "but" counts
        ("the plot was extremely good , yet the acting was wooden", 0),  # however strong the dropped clause
        ("the plot was not good , but the acting was hardly wooden", 1),
        ("although the plot was boring , the acting was convincing", 1),  # the concessive clause is dropped
        ("the plot was boring , although the acting was extremely convincing", 0),
        ("while i never loved the story , we did n't hate the ending", 1),
    ],
)
def test_label_of_hand_written_sentences(sentence, label):
    assert label_of(sentence) == label
    assert (_reference_score(sentence) > 0) == label


def test_generated_labels_follow_the_rule_and_scores_are_non_zero():
    data = generate_negation_scope(2000, seed=5)
    scores = [_reference_score(sentence) for sentence in data["sentence"]]
    assert all(scores), "only sentences with a non-zero score are generated"
    assert data["label"] == [int(score > 0) for score in scores]
    assert data["label"] == [label_of(sentence) for sentence in data["sentence"]]


def test_sentences_are_plain_lower_cased_tokens_and_use_every_construction():
    sentences = generate_negation_scope(2000, seed=2)["sentence"]
    assert all(s == s.lower().strip() and "  " not in s for s in sentences)
    words = {word for s in sentences for word in s.split()}
    assert {"not", "n't", "never", "very", "slightly", "but", "although", "and", ","} <= words
    assert words <= _POSITIVE | _NEGATIVE | _NEUTRAL


def test_same_seed_same_data_in_another_process_other_seed_differs():
    data = generate_negation_scope(300, seed=7)
    assert generate_negation_scope(300, seed=7) == data
    assert generate_negation_scope(300, seed=8)["sentence"] != data["sentence"]
    # A fresh interpreter with another hash seed (set iteration order) loads the module alone and must agree.
    code = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('synthetic', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(json.dumps(module.generate_negation_scope(300, seed=7)))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, synthetic.__file__], env=env, capture_output=True, check=True)
    assert json.loads(out.stdout) == data


@pytest.mark.parametrize("num_examples", [0, 1, 7, 2001])
def test_sizes_and_exact_balance(num_examples):
    data = generate_negation_scope(num_examples, seed=3)
    assert len(data["sentence"]) == len(data["label"]) == num_examples
    assert set(data["label"]) <= {0, 1} and len(LABEL_NAMES) == 2
    assert sum(data["label"]) in (num_examples // 2, (num_examples + 1) // 2)
    assert len(set(data["sentence"])) == num_examples


def test_splits_are_disjoint_labelled_balanced_and_train_is_the_plain_generator():
    splits = negation_scope_splits(seed=1, train_size=3000, validation_size=500, test_size=400)
    assert list(splits) == ["train", "validation", "test"]
    assert [len(split["sentence"]) for split in splits.values()] == [3000, 500, 400]
    sets = [set(split["sentence"]) for split in splits.values()]
    assert sum(map(len, sets)) == len(set.union(*sets)) == 3900
    for split in splits.values():
        assert len(split["label"]) == len(split["sentence"])
        assert 0.45 <= sum(split["label"]) / len(split["label"]) <= 0.55
    assert splits["train"] == generate_negation_scope(3000, seed=1)
    assert negation_scope_splits(seed=1, train_size=3000, validation_size=500, test_size=400) == splits


def test_a_bag_of_words_cannot_solve_the_task():
    splits = negation_scope_splits(seed=0, train_size=5000, validation_size=0, test_size=2000)
    train, test = splits["train"], splits["test"]
    # Every token ("n't", ",", "a") is a feature: the model sees all the words, only not their order.
    bag = make_pipeline(CountVectorizer(token_pattern=r"\S+"), LogisticRegression(max_iter=1000))
    bag.fit(train["sentence"], train["label"])
    accuracy = bag.score(test["sentence"], test["label"])
    # Sentiment words alone carry some signal; negation, modifiers and which clause counts need context.
    assert 0.55 < accuracy < 0.80
    assert [label_of(sentence) for sentence in test["sentence"]] == test["label"]  # the rule: accuracy 1.0
