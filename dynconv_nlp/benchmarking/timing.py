"""Timing that survives a shared, noisy machine: the benchmark scripts compare models in one run.

    seconds = interleaved_medians({"adaptive": lambda: model(**batch), "fixed": lambda: reference(**batch)}, repeats=5)
    speedup = seconds["fixed"] / seconds["adaptive"]

Every call runs once to warm up (allocator, compiled kernels' first call), then all calls take turns
``repeats`` times, so that a burst of load from elsewhere slows every model in the comparison, not
one; the median of each call's rounds then drops what bursts remain.
"""

import statistics
import time
from collections.abc import Callable


def interleaved_medians(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall-clock seconds of each call over ``repeats`` interleaved rounds after one warm-up round."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    seconds = {name: [] for name in calls}
    for round_ in range(repeats + 1):  # the first round warms up
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if round_:
                seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}
