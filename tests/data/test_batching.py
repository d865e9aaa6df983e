"""Token-count batches."""

import pytest

from dynconv_nlp.data.batching import TokenBatchSampler


def test_batches_cover_every_example_once_within_the_budget():
    lengths = [(i * 37) % 50 + 1 for i in range(500)]
    sampler = TokenBatchSampler(lengths, max_tokens=200, seed=1)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(500))
    assert all(max(lengths[i] for i in batch) * len(batch) <= 200 for batch in batches)
    # Similar lengths go together: little padding overall.
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert sum(lengths) / padded > 0.9


def test_order_depends_on_seed_and_epoch_only():
    lengths = [(i * 7) % 13 + 1 for i in range(100)]
    first, again = TokenBatchSampler(lengths, 40, seed=3), TokenBatchSampler(lengths, 40, seed=3)
    assert list(first) == list(again)
    epoch0 = list(first)
    first.set_epoch(1)
    assert list(first) != epoch0 and sorted(map(tuple, first)) == sorted(map(tuple, epoch0))


def test_an_example_longer_than_the_budget():
    with pytest.raises(ValueError, match="1 examples are longer than max_tokens=10"):
        TokenBatchSampler([3, 11, 4], max_tokens=10)


def test_sharded_over_two_processes_every_example_is_seen():
    from accelerate.data_loader import BatchSamplerShard

    lengths = [(i * 11) % 17 + 1 for i in range(301)]
    sampler = TokenBatchSampler(lengths, max_tokens=64, seed=0)
    shards = [list(BatchSamplerShard(sampler, num_processes=2, process_index=i)) for i in range(2)]
    assert len(shards[0]) == len(shards[1])  # even batches: no process waits for the other
    seen = {i for shard in shards for batch in shard for i in batch}
    assert seen == set(range(301))
