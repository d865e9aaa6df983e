import json

import pytest
import torch
from dynconv_testing import CORPUS, tiny_config

from dynconv_nlp import DynConvForSequenceClassification
from dynconv_nlp.ops import BACKENDS

TINY = ["--seq_lens", "8", "32", "--tokens", "64", "--hidden_size", "16", "--num_heads", "2", "--kernel_sizes", "5",
        "--repeats", "2", "--payoff_seq_len", "32", "--trim_kernel_size", "31", "--trim_seq_lens", "32"]


def test_benchmark_times_every_cpu_backend_and_attention_and_writes_results(load_script, tmp_path, capsys):
    bench = load_script("benchmark_ops")
    assert bench.main(TINY + ["--kernel_sizes", "5", "9", "--output_dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["rows"]
    assert {r["backend"] for r in rows} == {"naive", "unfold", "shift", "band", "compiled", "sdpa"}
    assert {(r["K"], r["T"]) for r in rows} == {(5, 8), (5, 32), (9, 8), (9, 32)}
    for r in rows:
        assert r["error"] is None and r["forward_ms"] > 0 and r["forward_backward_ms"] > 0, r
        assert r["first_call_s"] > 0 and r["forward_peak_mb"] > 0 and r["forward_backward_peak_mb"] > 0, r
    op_rows = [r for r in rows if r["backend"] != "sdpa"]
    assert all(0 < r["floor_ms"] < r["floor_forward_backward_ms"] for r in op_rows)
    assert results["machine"]["copy_gb_s"] > 0 and results["machine"]["matmul_gflop_s"] > 0
    # The payoff: both kinds of forced extents; the uniform ones (l = r = K / 8) keep fewer taps than K.
    payoff = results["payoff"]
    assert {(r["K"], r["extents"]) for r in payoff} == {(k, e) for k in (5, 9) for e in ("uniform", "varied")}
    assert all(r["trimmed_ms"] > 0 and r["full_forward_backward_ms"] > 0 and r["op_trimmed_ms"] > 0 for r in payoff)
    assert [r["taps_kept"] for r in payoff if r["extents"] == "uniform"] == [3, 5]
    # The trim part: all K, per call, per tile, per token and the ideal, at each mean width.
    trim = results["trim"]
    assert [(r["K"], r["T"], r["extents"]) for r in trim] == [(31, 32, f"uniform, mean {m:g}") for m in (0.1, 0.25, 0.5)]
    modes = ("full", "call", "tile", "token", "ideal")
    assert all(r[f"{m}{k}_ms"] > 0 for r in trim for m in modes for k in ("", "_forward_backward"))
    assert trim[0]["taps_kept"] < 31  # at most 2 x 10% of each side on: most taps trimmed
    assert all(r["ideal_taps"] < r["taps_kept"] for r in trim)  # the mean's taps, fewer than the widest token's
    report = (tmp_path / "results.md").read_text()
    assert "| per token: fwd share, fwd+bwd share |" in report and "Target (issue 33)" not in report  # no learned widths
    assert "| 5 | 32 | 2 | compiled |" in report and "| 5 | 32 | 2 | sdpa |" in report
    assert "auto at K = 31 picks" in report
    assert (tmp_path / "results.png").read_bytes().startswith(b"\x89PNG")


def test_the_trim_part_runs_each_layer_of_learned_extents_with_its_heads(load_script, tmp_path):
    bench = load_script("benchmark_ops")
    narrow, wide = [[0.1, 0.05], [0.0, 0.2]], [[0.9, 1.0], [0.3, 0.1]]  # 2 heads: [left, right] shares
    record = dict(run="width-test", kernel_sizes=[31, 31], causal=False, num_heads=2, sentences=2,
                  layers=[[[narrow, narrow, wide], [narrow]], [[wide], [narrow, narrow]]])
    path = tmp_path / "test-extents.json"
    path.write_text(json.dumps(record))
    (left, right), _ = bench.learned_extents(path, 2, 4, 31)
    assert left.shape == (2, 4, 2)  # B, T, heads: the sentences one after another, again from the first
    assert left[0, :, 0].tolist() == pytest.approx([1.5, 1.5, 13.5, 1.5]) and right[1, 0, 0].item() == pytest.approx(0.75)
    argv = TINY + ["--parts", "trim", "--trim_mean_widths", "0.25", "--trim_extents", str(path), "--output_dir", str(tmp_path)]
    assert bench.main(argv) == 0
    rows = json.loads((tmp_path / "results.json").read_text())["trim"]
    assert [(r["extents"], r["H"]) for r in rows] == [("uniform, mean 0.25", 2), ("test-extents, layer 0", 2),
                                                     ("test-extents, layer 1", 2)]
    assert "Target (issue 33): trim=\"token\" forward+backward at >= 80% of the ideal speed-up" in (tmp_path / "results.md").read_text()


def test_memory_peaks_rank_unfold_above_shift(load_script):
    """unfold materialises K copies of x; shift keeps O(B T C)."""
    bench = load_script("benchmark_ops")
    args = bench.parse_args(["--seq_lens", "64", "--tokens", "256", "--hidden_size", "64", "--num_heads", "4",
                             "--kernel_sizes", "31", "--repeats", "1", "--parts", "ops", "--backends", "unfold", "shift", "--no_attention"])
    rows = {r["backend"]: r for r in bench.benchmark_ops(args, dict(copy_gb_s=10.0, matmul_gflop_s=10.0))}
    assert rows["unfold"]["forward_peak_mb"] > 4 * rows["shift"]["forward_peak_mb"]


def test_targets_are_checked_against_the_measured_rows(load_script):
    bench = load_script("benchmark_ops")

    def row(backend, T, fb, forward=1.0):
        return dict(backend=backend, K=31, T=T, error=None, forward_backward_ms=fb, forward_ms=forward, floor_ms=0.5)

    rows = [row("unfold", 512, 100.0), row("sdpa", 512, 40.0), row("fast", 512, 8.0),
            row("unfold", 2048, 100.0), row("sdpa", 2048, 60.0), row("fast", 2048, 12.0, forward=2.0)]
    (line,) = bench.targets(rows)
    assert line.startswith("- fast (K = 31): fwd+bwd >= 10x unfold at every T: NO (min 8.3x)")
    assert "faster than sdpa at every T >= 512: yes (min 5.0x)" in line
    assert ">= 5x sdpa at T = 2048: yes (5.0x)" in line
    assert "forward within 3x of the floor: NO (max 4.0x)" in line


def test_learned_widths_payoff_runs_a_trained_checkpoint_on_text(load_script, tmp_path, tokenizer_dir, capsys):
    from transformers import AutoTokenizer

    bench = load_script("benchmark_ops")
    model_dir = tmp_path / "model"
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = tiny_config(vocab_size=len(tokenizer), kernel_size=[3, 9], pad_token_id=tokenizer.pad_token_id)
    DynConvForSequenceClassification(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{text}\t1\n" for text in CORPUS))
    argv = TINY + ["--parts", "payoff", "--width_model", str(model_dir), "--width_data", str(data)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "Learned widths" in out and "batch [7, " in out and "/2, " in out and "/8)" in out


def test_a_backend_that_fails_its_check_is_reported_not_timed(load_script, monkeypatch, capsys):
    bench = load_script("benchmark_ops")
    naive = BACKENDS["naive"]
    monkeypatch.setitem(BACKENDS, "shift", lambda x, weight, padding_l: 1.01 * naive(x, weight, padding_l))
    bench.main(TINY + ["--parts", "ops", "--backends", "unfold", "shift"])
    out = capsys.readouterr().out
    assert "| 5 | 8 | 8 | shift | failed check: output differs from naive" in out
    assert "| 5 | 32 | 2 | shift | failed check: output differs from naive" in out
    assert "| 5 | 8 | 8 | unfold |" in out


def test_a_backend_that_raises_is_reported_not_timed(load_script, monkeypatch, capsys):
    bench = load_script("benchmark_ops")

    def broken(x, weight, padding_l):
        raise RuntimeError("out of shared memory")

    monkeypatch.setitem(BACKENDS, "band", broken)
    bench.main(TINY + ["--parts", "ops", "--backends", "band"])
    assert "| 5 | 8 | 8 | band | failed check: band raised RuntimeError: out of shared memory" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seq_lens", "100", "--tokens", "8192"], "every --seq_lens, --payoff_seq_len and --trim_seq_lens value must divide --tokens"),
        (["--width_model", "somewhere"], "--width_model and --width_data go together"),
        (["--width_model", "nowhere", "--width_data", "nothing.tsv"], "nowhere does not exist"),
        (["--backends", "fast"], "unknown backends ['fast']"),
    ],
)
def test_bad_arguments_exit_with_one_line(load_script, capsys, argv, message):
    bench = load_script("benchmark_ops")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_learned_looking_extents_have_the_mean_width_asked_for(load_script):
    bench = load_script("benchmark_ops")
    generator = torch.Generator().manual_seed(0)
    for causal in (False, True):
        left, right = bench.learned_looking_extents(4, 256, 8, 127, 0.25, causal, generator)
        assert (left + right).mean().item() / 126 == pytest.approx(0.25, rel=0.05)
        assert left.max().item() <= (126 if causal else 63) * 0.5 and (right == 0).all() == causal
