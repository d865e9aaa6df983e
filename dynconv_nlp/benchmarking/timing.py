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

import torch


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


def sync(device: str) -> None:
    """Wait for the device's queued kernels, so that a clock read after it counts them."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def seconds(fn: Callable[[], object], device: str, calls: int = 1) -> float:
    """Seconds per call of ``calls`` calls of ``fn`` back to back."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    sync(device)
    return (time.perf_counter() - start) / calls


def median_ms(fn: Callable[[], object], repeats: int, device: str) -> float:
    """Median milliseconds of one call of ``fn`` over ``repeats`` rounds after a warm-up call."""
    fn()  # warm-up: allocator, kernel compilation, caches
    sync(device)
    # On a GPU, ten calls between synchronisations: the launches queue up behind the running kernels,
    # so a short kernel is timed, not its launch and the synchronisation.
    calls = 10 if device.startswith("cuda") else 1
    return 1e3 * statistics.median(seconds(fn, device, calls) for _ in range(repeats))


def peak_mb(fn: Callable[[], object], device: str) -> float | None:
    """Peak MB of the tensors alive while ``fn`` runs, inputs included; None where it cannot be measured."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    # On the CPU the profiler's memory timeline sees every allocation, compiled kernels' included.
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import MemoryProfileTimeline

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        fn()
    try:
        _, sizes = MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline(torch.device("cpu"))
    except Exception:  # a private API: if a torch release changes it, report no number rather than fail
        return None
    return max((sum(s) for s in sizes), default=0) / 2**20
