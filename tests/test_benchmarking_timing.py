import types

import pytest

from dynconv_nlp.benchmarking import timing
from dynconv_nlp.benchmarking.timing import interleaved_medians


@pytest.fixture
def clock(monkeypatch):
    """A fake ``time`` whose clock moves only when a call says how long it took."""
    state = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=lambda: state.now))
    return state


def timed_call(clock, name, durations, order):
    """A call that takes the next of ``durations`` seconds and notes that it ran."""
    durations = iter(durations)

    def call():
        order.append(name)
        clock.now += next(durations)

    return call


def test_the_warm_up_round_is_left_out_and_each_call_gets_its_median(clock):
    order = []
    calls = {
        "slow": timed_call(clock, "slow", [100.0, 3.0, 9.0, 4.0], order),  # 100: a first call that compiles
        "fast": timed_call(clock, "fast", [50.0, 1.0, 2.0, 30.0], order),  # 30: a burst of load from elsewhere
    }
    assert interleaved_medians(calls, repeats=3) == {"slow": 4.0, "fast": 2.0}
    assert order == ["slow", "fast"] * 4  # interleaved: every round runs every call once, in order


def test_at_least_one_timed_round_is_required(clock):
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        interleaved_medians({"model": lambda: None}, repeats=0)
