"""Negation scope: a generated, download-free sentiment task whose labels need context of varying width.

Each example is one or two clauses of lower-cased English about a film, tokens separated by single spaces::

    the plot was not at all boring , but the acting was hardly convincing        -> 0 (negative)
    although i did n't really enjoy the story , the cast was very charming      -> 1 (positive)
    the ending was slightly predictable and the songs were extremely memorable  -> 1 (positive)

The label is a deterministic function of the sentence, :func:`label_of`:

1. Only the main clause counts. Everything up to and including the last "but" / "yet" is dropped, and so is every
   concessive clause: from "although" / "though" / "while" up to the next "," or the end of the sentence.
2. Each sentiment word left ("good", "boring", "enjoy", "hated", ...) scores +2 if positive, -2 if negative;
   doubled (+-4) when an intensifier ("very", "extremely", "truly", ...) precedes it in its clause, halved (+-1)
   when a diminisher ("slightly", "somewhat", "a bit", ...) does, and sign-flipped when a negator ("not", "n't",
   "never", "hardly", "barely", "no longer") does. A negator or modifier binds to the next sentiment word however
   many neutral words lie between; "," and "and" end a clause, and unbound negators and modifiers with it.
3. The score is the sum; label = 1 (positive) if score > 0, else 0. Only sentences with a non-zero score are
   generated.

Why it needs context, and of varying width: a negator flips a word 1..6 tokens after it (fillers such as "at all",
"really", "in the least" in between), a modifier 1..2 tokens before a word sets its weight, whether a word
counts at all depends on a "but" up to a whole clause (~15 tokens) before it or on an "although" opening its clause,
and the two clauses of an "and" are weighed against each other. A unigram bag of words sees none of this and scores
between 0.55 and 0.80 (what tests/data/test_synthetic.py asserts); the rule itself scores 1.0.
"""

import random

LABEL_NAMES = ["negative", "positive"]

_POSITIVE_ADJECTIVES = (
    "good", "great", "brilliant", "charming", "convincing", "delightful", "engaging", "enjoyable", "excellent",
    "fresh", "funny", "gripping", "moving", "original", "clever", "beautiful", "memorable", "powerful", "touching",
    "witty", "impressive", "compelling", "entertaining", "satisfying", "wonderful", "thoughtful", "solid",
)  # fmt: skip
_NEGATIVE_ADJECTIVES = (
    "bad", "boring", "dull", "awful", "terrible", "clumsy", "predictable", "tedious", "bland", "confusing", "weak",
    "forgettable", "lifeless", "messy", "painful", "pointless", "shallow", "silly", "flat", "stale", "tiresome",
    "unconvincing", "uninspired", "disappointing", "poor", "wooden", "sloppy",
)  # fmt: skip
# (base, past) forms: "did not enjoy" and "no longer enjoy" take the base form, "never enjoyed" the past.
_POSITIVE_VERBS = (
    ("enjoy", "enjoyed"), ("love", "loved"), ("like", "liked"), ("admire", "admired"), ("appreciate", "appreciated"),
    ("adore", "adored"),
)  # fmt: skip
_NEGATIVE_VERBS = (
    ("hate", "hated"), ("dislike", "disliked"), ("resent", "resented"), ("despise", "despised"),
    ("detest", "detested"), ("loathe", "loathed"),
)  # fmt: skip

_NEGATORS = ("not", "n't", "never", "hardly", "barely", "no longer")
_ADJECTIVE_INTENSIFIERS = ("very", "extremely", "incredibly", "remarkably", "truly", "absolutely")
_VERB_INTENSIFIERS = ("truly", "absolutely", "thoroughly")
_ADJECTIVE_DIMINISHERS = ("slightly", "somewhat", "mildly", "a bit", "a little")
_VERB_DIMINISHERS = ("slightly", "somewhat", "mildly")
_CONTRASTS = ("but", "yet")
_CONCESSIVES = ("although", "though", "while")
_CLAUSE_ENDS = (",", "and")

# Neutral words: they only put distance between a negator or modifier and the word it binds to. Most of those after
# a negator ("at all", "in the least", "ever", ...) are only English under negation, hence separate plain fillers.
_NEGATED_ADJECTIVE_FILLERS = tuple(
    phrase.split()
    for phrase in (
        "really", "that", "particularly", "exactly", "quite", "especially", "remotely", "even", "ever", "at all",
        "all that", "in any way", "by any means", "in the least", "for a moment", "one bit", "in the end",
    )
)  # fmt: skip
_NEGATED_VERB_FILLERS = tuple(
    phrase.split()
    for phrase in (
        "really", "particularly", "exactly", "even", "ever", "fully", "honestly", "especially", "at all",
        "in any way", "for a moment", "for one second",
    )
)  # fmt: skip
_PLAIN_FILLERS = tuple(phrase.split() for phrase in ("really", "honestly", "frankly", "also", "still"))
_ADVERBS = ("visually", "emotionally", "genuinely", "consistently", "surprisingly", "technically")

_SINGULAR_SUBJECTS = tuple(
    phrase.split()
    for phrase in (
        "the film", "the movie", "the plot", "the acting", "the script", "the dialogue", "the soundtrack",
        "the ending", "the cast", "the director", "the story", "the pacing", "the humor", "the premise",
        "the camera work", "the editing", "this sequel",
    )
)  # fmt: skip
_PLURAL_SUBJECTS = tuple(
    phrase.split()
    for phrase in (
        "the characters", "the jokes", "the effects", "the songs", "the performances", "the action scenes",
        "the visuals", "the twists",
    )
)  # fmt: skip

# Role of each word or two-word phrase in the rule: +1 / -1 for sentiment words, else the kind of modifier.
_LEXICON: dict[str, int | str] = {
    **{word: 1 for word in _POSITIVE_ADJECTIVES + sum(_POSITIVE_VERBS, ())},
    **{word: -1 for word in _NEGATIVE_ADJECTIVES + sum(_NEGATIVE_VERBS, ())},
    **{word: "negator" for word in _NEGATORS},
    **{word: "intensifier" for word in _ADJECTIVE_INTENSIFIERS + _VERB_INTENSIFIERS},
    **{word: "diminisher" for word in _ADJECTIVE_DIMINISHERS + _VERB_DIMINISHERS},
}
# Integer weights: halving a diminished word stays exact.
_WEIGHTS = {None: 2, "intensifier": 4, "diminisher": 1}

# Each sentiment word -> the words of opposite polarity and the same form, to mirror a sentence (flip its label).
_OPPOSITES: dict[str, tuple[str, ...]] = {}
# zip(*verbs) is (base forms, past forms).
for _ours, _theirs in (
    (_POSITIVE_ADJECTIVES, _NEGATIVE_ADJECTIVES),
    *zip(zip(*_POSITIVE_VERBS), zip(*_NEGATIVE_VERBS)),
):
    _OPPOSITES.update(dict.fromkeys(_ours, _theirs) | dict.fromkeys(_theirs, _ours))


def _main_clause(tokens: list[str]) -> list[str]:
    """Rule 1: the tokens that count, i.e. those after the last "but" / "yet", less every concessive clause."""
    contrasts = [i for i, token in enumerate(tokens) if token in _CONTRASTS]
    if contrasts:
        tokens = tokens[contrasts[-1] + 1 :]
    kept, concessive = [], False
    for token in tokens:
        if token in _CONCESSIVES:
            concessive = True
        elif token == ",":
            concessive = False
        if not concessive:
            kept.append(token)
    return kept


def _score(tokens: list[str]) -> int:
    """Rule 2 summed over a span of tokens: each sentiment word +-2, x2 intensified, /2 diminished, negated flipped."""
    score, negated, modifier = 0, False, None
    i = 0
    while i < len(tokens):
        pair = " ".join(tokens[i : i + 2])
        phrase = pair if pair in _LEXICON else tokens[i]
        i += 1 + phrase.count(" ")
        role = _LEXICON.get(phrase)
        if phrase in _CLAUSE_ENDS:
            negated, modifier = False, None
        elif role == "negator":
            negated = True
        elif role in ("intensifier", "diminisher"):
            modifier = role
        elif role is not None:  # a sentiment word: takes the pending negator and modifier of its clause
            score += role * _WEIGHTS[modifier] * (-1 if negated else 1)
            negated, modifier = False, None
    return score


def label_of(sentence: str) -> int:
    """The label of a sentence by the rule of the module docstring: 1 (positive) if its score is > 0, else 0.

    sentence: tokens separated by single spaces, as generated. A sentence scoring 0 (never generated) gets 0.
    """
    return int(_score(_main_clause(sentence.split())) > 0)


def _fill(rng: random.Random, fillers: tuple[list[str], ...], length: int) -> list[str]:
    """Exactly `length` tokens of distinct filler phrases (each list has enough one-word ones for the lengths asked)."""
    tokens: list[str] = []
    while len(tokens) < length:
        tokens += rng.choice([f for f in fillers if len(f) <= length - len(tokens) and f[0] not in tokens])
    return tokens


def _scope(
    rng: random.Random,
    negated: bool,
    fillers: tuple[list[str], ...],
    intensifiers: tuple[str, ...],
    diminishers: tuple[str, ...],
    adverbs: tuple[str, ...],
) -> list[str]:
    """The tokens between a clause's negator (its copula or subject if not negated) and its sentiment word.

    Fillers, then maybe a modifier, then maybe a neutral adverb ("very visually striking"). After a negator there
    are distance - 1 of them, the distance uniform in 1..6, so negation has to be followed across varying widths.
    """
    # "not slightly good" is not English: a negated word is only ever intensified.
    modifiers = intensifiers if negated else intensifiers + diminishers
    modifier = rng.choice(modifiers).split() if rng.random() < 0.4 else []
    adverb = [rng.choice(adverbs)] if adverbs and rng.random() < 0.25 else []
    if negated:
        gap = rng.randint(0, 5)
        if len(modifier) + len(adverb) > gap:
            modifier, adverb = [], []
        filler_length = gap - len(modifier) - len(adverb)
    else:
        filler_length = rng.choice((0, 0, 1, 2))
    return _fill(rng, fillers, filler_length) + modifier + adverb


def _clause(rng: random.Random) -> list[str]:
    """One clause with one sentiment word, negated 30% of the time: "the plot was not at all boring",
    "the songs felt very memorable", "i did n't really enjoy the story", "we loved the ending"."""
    negated = rng.random() < 0.3
    negator = rng.choice(_NEGATORS).split() if negated else []
    if rng.random() < 0.7:
        plural = rng.random() < 0.3
        subject = rng.choice(_PLURAL_SUBJECTS if plural else _SINGULAR_SUBJECTS)
        # Negated clauses keep to forms of "be": "the plot was n't", not "the plot felt n't".
        copulas = ("are", "were") if plural else ("is", "was")
        if not negated:
            copulas += ("seem", "seemed", "feel", "felt") if plural else ("seems", "seemed", "feels", "felt")
        adjective = rng.choice(rng.choice((_POSITIVE_ADJECTIVES, _NEGATIVE_ADJECTIVES)))
        fillers = _NEGATED_ADJECTIVE_FILLERS if negated else _PLAIN_FILLERS
        scope = _scope(rng, negated, fillers, _ADJECTIVE_INTENSIFIERS, _ADJECTIVE_DIMINISHERS, _ADVERBS)
        return [*subject, rng.choice(copulas), *negator, *scope, adjective]
    if negator in (["not"], ["n't"]):
        negator = ["did", *negator]
    base, past = rng.choice(rng.choice((_POSITIVE_VERBS, _NEGATIVE_VERBS)))
    verb = base if negator[:1] in (["did"], ["no"]) else past
    fillers = _NEGATED_VERB_FILLERS if negated else _PLAIN_FILLERS
    scope = _scope(rng, negated, fillers, _VERB_INTENSIFIERS, _VERB_DIMINISHERS, ())
    return [rng.choice(("i", "we")), *negator, *scope, verb, *rng.choice(_SINGULAR_SUBJECTS + _PLURAL_SUBJECTS)]


def _mirror(rng: random.Random, tokens: list[str]) -> list[str]:
    """The same sentence with every sentiment word swapped for a random one of opposite polarity: its score negated."""
    return [rng.choice(_OPPOSITES[token]) if token in _OPPOSITES else token for token in tokens]


def _sentence(rng: random.Random) -> list[str]:
    """A clause alone (40%), two clauses joined by "and" (20%, both count), by "but" / "yet" (20%, the second
    counts), or one of them concessive (20%: "although a , b" or "a , although b", the other counts)."""
    first, second = _clause(rng), _clause(rng)
    form = rng.random()
    if form < 0.4:
        return first
    if form < 0.6:
        return [*first, "and", *second]
    if form < 0.8:
        return [*first, ",", rng.choice(_CONTRASTS), *second]
    concessive = rng.choice(_CONCESSIVES)
    if form < 0.9:
        return [concessive, *first, ",", *second]
    return [*first, ",", concessive, *second]


def _generate(num_examples: int, rng: random.Random, seen: set[str]) -> dict[str, list]:
    """`num_examples` sentences not in `seen` (to which they are added), with exactly balanced shuffled labels."""
    labels = [i % 2 for i in range(num_examples)]
    rng.shuffle(labels)
    sentences = []
    for label in labels:
        while True:
            tokens = _sentence(rng)
            score = _score(_main_clause(tokens))
            if score == 0:
                continue
            if int(score > 0) != label:  # mirroring keeps the structure and negates the score: hits the label in one go
                tokens = _mirror(rng, tokens)
            sentence = " ".join(tokens)
            if sentence not in seen:
                break
        seen.add(sentence)
        sentences.append(sentence)
    return {"sentence": sentences, "label": [label_of(sentence) for sentence in sentences]}


def generate_negation_scope(num_examples: int, seed: int = 0) -> dict[str, list]:
    """{"sentence": [str] * num_examples, "label": [int] * num_examples}: distinct generated sentences and their
    labels by the rule of the module docstring (:func:`label_of`; 0 = negative, 1 = positive, see LABEL_NAMES).

    Labels are balanced exactly (num_examples // 2 of one, the rest of the other) and shuffled. Deterministic:
    the same seed gives the same lists in any process (a `random.Random(seed)` of its own, no global state).
    """
    return _generate(num_examples, random.Random(seed), set())


def negation_scope_splits(
    seed: int = 0, train_size: int = 20000, validation_size: int = 2000, test_size: int = 2000
) -> dict[str, dict[str, list]]:
    """The task's train / validation / test splits, disjoint (no sentence in two splits), each generated from its
    own seed; test keeps labels (so it can be scored).

    Returns {"train": ..., "validation": ..., "test": ...}, each as from :func:`generate_negation_scope`; train is
    exactly `generate_negation_scope(train_size, seed)`, validation and test draw from the seeds "{seed}/validation"
    and "{seed}/test", skipping sentences of the splits before them.
    """
    seen: set[str] = set()
    sizes = {"train": train_size, "validation": validation_size, "test": test_size}
    return {
        name: _generate(size, random.Random(seed if name == "train" else f"{seed}/{name}"), seen)
        for name, size in sizes.items()
    }
