"""Inputs far longer than training's: no position limit (sinusoidal positions), memory linear in length, bf16 finite."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from dynconv_testing import tiny_config

from dynconv_nlp import DynConvForSequenceClassification

ROOT = Path(__file__).resolve().parents[2]

# Peak resident memory above the model, of one forward pass of the small encoder
# (configs/models/small.json) per length, in a fresh process: a thread samples the resident size
# while the pass runs. With a fixed mmap threshold glibc hands every large block back when it is
# freed, so the resident size is what is alive (not what the allocator kept from earlier passes).
MEASURE = textwrap.dedent("""
    import ctypes, gc, json, os, sys, threading, time
    import torch
    import dynconv_nlp
    from transformers import AutoConfig, AutoModel

    def resident_bytes():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def peak_mb(run):
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        base, peak, done = resident_bytes(), [0], threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], resident_bytes())
                time.sleep(0.0005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        result = run()
        done.set()
        sampler.join()
        return (max(peak[0], resident_bytes()) - base) / 2**20, result

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(sys.argv[1], vocab_size=8000)
    model = AutoModel.from_config(config).eval()
    peaks, finite = {}, True
    for length in (256, 4096, 8192, 16384):  # 256: a first pass, to warm up
        input_ids = torch.randint(5, 8000, (1, length))
        with torch.no_grad():
            peaks[length], hidden = peak_mb(lambda: model(input_ids=input_ids).last_hidden_state)
        finite &= bool(torch.isfinite(hidden).all()) and hidden.shape[1] == length
        del hidden
    print(json.dumps({"peak_mb": peaks, "finite": finite}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm and glibc's malloc_trim")
def test_a_16k_token_input_runs_with_memory_linear_in_its_length():
    env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_="65536")
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(ROOT / "configs/models/small.json")],
        capture_output=True, text=True, env=env, timeout=600, check=True,
    )  # fmt: skip
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    peaks = {int(length): mb for length, mb in measured["peak_mb"].items()}
    assert measured["finite"]
    # Linear: twice the length, twice the peak (quadratic memory: 4x). On this project's CPU:
    # 70, 138 and 275 MB for 4k, 8k and 16k tokens, 17 KB a token.
    assert 1.7 < peaks[8192] / peaks[4096] < 2.3, peaks
    assert 1.7 < peaks[16384] / peaks[8192] < 2.3, peaks
    assert peaks[16384] < 1024, peaks


def test_training_at_8192_tokens_in_bf16_stays_finite():
    torch.manual_seed(0)
    config = tiny_config(num_labels=2, kernel_size=[3, 31], hidden_size=32, intermediate_size=64)
    model = DynConvForSequenceClassification(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    input_ids = torch.randint(4, config.vocab_size, (1, 8192))
    for step in range(3):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=input_ids, labels=torch.tensor([step % 2])).loss
        loss.backward()
        assert torch.isfinite(loss), step
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None), step
        optimizer.step()
        optimizer.zero_grad()
    assert all(torch.isfinite(p).all() for p in model.parameters())
