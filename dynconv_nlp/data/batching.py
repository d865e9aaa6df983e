"""Batches by token count, as fairseq makes them (``--max_tokens``).

Examples of similar length go together, so little of a batch is padding, and each batch holds at
most ``max_tokens`` tokens counting padding (its longest example times its size). The batches are
shuffled anew each epoch from ``(seed, epoch)``: a resumed run sees the batches an uninterrupted
one would.
"""

import random

from torch.utils.data import Sampler


class TokenBatchSampler(Sampler[list[int]]):
    """Index batches of at most ``max_tokens`` padded tokens; ``lengths[i]`` is example i's length."""

    def __init__(self, lengths: list[int], max_tokens: int, seed: int = 0, shuffle: bool = True):
        too_long = [n for n in lengths if n > max_tokens]
        if too_long:
            raise ValueError(
                f"{len(too_long)} examples are longer than max_tokens={max_tokens} (longest {max(too_long)}): "
                "raise --max_tokens or lower --max_source_length / --max_target_length"
            )
        self.lengths, self.max_tokens, self.seed, self.shuffle = lengths, max_tokens, seed, shuffle
        self.epoch = 0
        self.batches = self._pack()

    def _pack(self) -> list[list[int]]:
        # Sort by length, ties broken at random (fixed by the seed) so equal-length examples mix.
        order = random.Random(self.seed).sample(range(len(self.lengths)), len(self.lengths))
        order.sort(key=lambda i: self.lengths[i])
        batches, batch, longest = [], [], 0
        for index in order:
            longest_if_added = max(longest, self.lengths[index])
            if batch and longest_if_added * (len(batch) + 1) > self.max_tokens:
                batches.append(batch)
                batch, longest_if_added = [], self.lengths[index]
            batch.append(index)
            longest = longest_if_added
        if batch:
            batches.append(batch)
        return batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        batches = list(self.batches)
        if self.shuffle:
            random.Random(self.seed * 100_003 + self.epoch).shuffle(batches)
        return iter(batches)

    def __len__(self) -> int:
        return len(self.batches)
