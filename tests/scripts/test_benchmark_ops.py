import json

import pytest

from dynconv_nlp.ops import BACKENDS

TINY = ["--seq_lens", "8", "32", "--tokens", "64", "--hidden_size", "16", "--num_heads", "2", "--kernel_size", "5",
        "--repeats", "2"]


def test_benchmark_times_every_cpu_backend_and_writes_results(load_script, tmp_path, capsys):
    bench = load_script("benchmark_ops")
    assert bench.main(TINY + ["--output_dir", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert {r["backend"] for r in rows} == {"naive", "unfold", "shift", "band"}
    assert {r["T"] for r in rows} == {8, 32}
    assert all(r["error"] is None and r["forward_ms"] > 0 and r["forward_backward_ms"] > 0 for r in rows)
    assert "| 32 | 2 | band |" in (tmp_path / "results.md").read_text()


def test_a_backend_that_fails_its_check_is_reported_not_timed(load_script, monkeypatch, capsys):
    bench = load_script("benchmark_ops")
    naive = BACKENDS["naive"]
    monkeypatch.setitem(BACKENDS, "shift", lambda x, weight, padding_l: 1.01 * naive(x, weight, padding_l))
    bench.main(TINY + ["--backends", "unfold", "shift"])
    out = capsys.readouterr().out
    assert "| 8 | 8 | shift | failed check: output differs from naive" in out
    assert "| 32 | 2 | shift | failed check: output differs from naive" in out
    assert "| 8 | 8 | unfold |" in out


def test_a_backend_that_raises_is_reported_not_timed(load_script, monkeypatch, capsys):
    bench = load_script("benchmark_ops")

    def broken(x, weight, padding_l):
        raise RuntimeError("out of shared memory")

    monkeypatch.setitem(BACKENDS, "band", broken)
    bench.main(TINY + ["--backends", "band"])
    assert "| 8 | 8 | band | failed check: band raised RuntimeError: out of shared memory" in capsys.readouterr().out


def test_bad_arguments_exit_with_one_line(load_script, capsys):
    bench = load_script("benchmark_ops")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--seq_lens", "100", "--tokens", "8192"])
    assert exit_info.value.code == 2
    assert "every --seq_lens value must divide --tokens 8192" in capsys.readouterr().err
