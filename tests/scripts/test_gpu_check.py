"""benchmarks/gpu_check.py as far as a CPU allows: its exit without CUDA, its checks (on CPU tensors, for
the backends that run here), that a wrong backend fails them, its result files and its targets."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dynconv_nlp as dc
from dynconv_testing import import_script
from dynconv_nlp.ops import dispatch

ROOT = Path(__file__).resolve().parents[2]
gpu_check = import_script("gpu_check")

ENVIRONMENT = {"device": "test", "cuda": None, "torch": torch.__version__, "triton": "-", "date": "2026-12-02"}


def test_without_cuda_it_says_so_in_one_line_and_exits_0(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_check.py"), "--output_dir", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [gpu_check.NO_CUDA]
    assert not (tmp_path / "out").exists()


def test_the_interpreter_is_refused_where_cuda_is(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert gpu_check.main([]) == 2
    assert "TRITON_INTERPRET=1" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--repeats", "0"], ["--parts", "everything"]])
def test_bad_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as stop:
        gpu_check.parse_args(argv)
    assert stop.value.code == 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("K,causal", [(3, False), (31, True)])
def test_op_checks_pass_for_a_correct_backend(dtype, K, causal):
    x, weight, grad_y = gpu_check.op_inputs(2, 200, 64, 4, K, dtype, "cpu")
    assert gpu_check.compare_with_naive("band", x, weight, K - 1 if causal else K // 2, grad_y) is None
    assert gpu_check.check_empty("shift", "cpu") is None
    assert gpu_check.check_non_contiguous("unfold", "cpu") is None


def test_a_wrong_backend_fails_the_check_and_the_run(monkeypatch, tmp_path):
    band = dispatch.BACKENDS["band"]
    monkeypatch.setitem(dispatch.BACKENDS, "band", lambda x, w, p, **kw: band(x, w, p) * 1.01)
    x, weight, grad_y = gpu_check.op_inputs(2, 200, 64, 4, 31, torch.float32, "cpu")
    problem = gpu_check.compare_with_naive("band", x, weight, 15, grad_y)
    assert problem is not None and problem.startswith("y:")

    report = gpu_check.Report(tmp_path, ENVIRONMENT)
    assert not report.run("ops", "band fp32 K=31", gpu_check.compare_with_naive, "band", x, weight, 15, grad_y)
    assert report.run("ops", "shift empty", gpu_check.check_empty, "shift", "cpu")
    assert not report.run("ops", "a check that crashes", lambda: 1 / 0)
    report.write()
    record = json.loads((tmp_path / "results.json").read_text())
    assert [c["ok"] for c in record["checks"]] == [False, True, False]
    assert record["checks"][2]["detail"] == "ZeroDivisionError: division by zero"
    markdown = (tmp_path / "results.md").read_text()
    assert "**1 of 3 checks passed.**" in markdown and "- ops: band fp32 K=31: y:" in markdown


def test_kernel_gradients_of_zero_taps_are_compared_only_unless_declared_inactive(monkeypatch):
    # A backend that, as triton told that zero taps are inactive, gives them no kernel gradient.
    band = dispatch.BACKENDS["band"]
    monkeypatch.setitem(dispatch.BACKENDS, "band", lambda x, w, p, **kw: band(x, w * (w.detach() != 0), p))
    weight = gpu_check.learned_looking_taps(2, 40, 4, 15, 0.25, "cpu", causal=False).requires_grad_()
    x, _, grad_y = gpu_check.op_inputs(2, 40, 16, 4, 15, torch.float32, "cpu")
    assert (weight == 0).any()
    assert gpu_check.compare_with_naive("band", x, weight, 7, grad_y, inactive_taps=True) is None
    assert gpu_check.compare_with_naive("band", x, weight, 7, grad_y).startswith("grad_weight:")


@pytest.mark.parametrize("mean_width", gpu_check.SKIPPING_WIDTHS)
def test_learned_looking_taps_have_the_asked_mean_width(mean_width):
    K = 127
    weight = gpu_check.learned_looking_taps(4, 512, 8, K, mean_width, "cpu", causal=False)
    torch.testing.assert_close(weight.sum(-1), torch.ones(4, 512, 8))
    used = (weight > 0).sum(-1).float() - 1  # taps besides the centre, about the width l + r
    assert abs(used.mean().item() / (K - 1) - mean_width) < 0.02
    assert weight[..., K // 2].gt(0).all()


@pytest.mark.parametrize("model_class,make_labels", [
    (dc.DynConvForSequenceClassification, lambda ids: ids[:, 0] % 3),
    (dc.DynConvForMaskedLM, lambda ids: ids),
    (dc.DynConvForConditionalGeneration, lambda ids: ids[:, :12].contiguous()),
])
def test_model_checks_pass_on_the_cpu(model_class, make_labels):
    assert gpu_check.check_head(model_class, make_labels, "cpu") is None


def test_generate_and_base_model_checks_pass_on_the_cpu():
    assert gpu_check.check_base_model("cpu") is None
    assert gpu_check.check_generate("cpu") is None


def test_benchmark_targets_say_met_and_missed():
    def row(backend, T, K, forward, forward_backward, floor=None):
        return {"backend": backend, "C": 512, "T": T, "K": K, "forward_ms": forward,
                "forward_backward_ms": forward_backward, "floor_ms": floor}

    rows = [row("triton", 2048, 31, 1.0, 3.0, floor=0.7), row("unfold", 2048, 31, 5.0, 9.0),
            row("sdpa", 2048, 31, 2.0, 2.5), row("triton", 512, 31, 1.0, 3.0, floor=0.2),
            row("sdpa", 512, 31, 0.1, 0.2)]
    skipping = [{"K": 127, "mean_width": 0.25, "speedup": 1.2}]
    targets = dict(gpu_check.benchmark_targets(rows, skipping))
    assert targets == {
        "triton forward at 70% of the floor (C=512, T=2048, K=31; target 60%)": True,
        "triton forward+backward 3.00x faster than unfold (C=512, T=2048, K=31)": True,
        "triton forward+backward 0.83x faster than sdpa (C=512, T=2048, K=31)": False,
        "tile skipping at mean width 25%, K=127: 1.20x (target 1.5x)": False,
    }  # SDPA at T = 512 is no target, nor is the floor below T = 2048


def test_make_gpu_check_runs_the_script():
    make = subprocess.run(["make", "-n", "gpu-check"], capture_output=True, text=True, cwd=ROOT)
    assert make.returncode == 0 and "benchmarks/gpu_check.py" in make.stdout


def test_the_bf16_training_check_runs_run_glue_through_accelerate(tmp_path):
    # On the CPU and short (the GPU check runs 600 steps): the command, its bf16 and its results.
    report = gpu_check.Report(tmp_path, ENVIRONMENT)
    gpu_check.check_training(report, train_samples=320)
    names = [c.name for c in report.checks]
    assert report.checks[0].name == "the run is in bf16 (run_info.json)" and report.checks[0].ok
    assert names[1].startswith("training loss falls (by epoch: ") and names[2].startswith("dev accuracy ")
    assert len(report.measurements["train"]["train_losses"]) == 3
    assert report.measurements["train"]["steps"] == 30


def test_benchmarks_are_gathered_with_their_targets_and_mismatches(monkeypatch, tmp_path):
    runs = []

    def fake_benchmark_ops(argv):  # what benchmark_ops.py writes, without the GPU
        runs.append(argv)
        out = Path(argv[argv.index("--output_dir") + 1])
        out.mkdir(parents=True)
        C = int(argv[argv.index("--hidden_size") + 1])
        rows = [{"backend": "triton", "C": C, "T": 2048, "K": 31, "forward_ms": 1.0, "forward_backward_ms": 2.0,
                 "floor_ms": 0.8, "error": None},
                {"backend": "unfold", "C": C, "T": 2048, "K": 31, "forward_ms": 4.0, "forward_backward_ms": 8.0,
                 "floor_ms": 0.8, "error": "output differs from naive by 0.1" if C == 1024 else None}]
        (out / "results.json").write_text(json.dumps({"rows": rows}))
        return None

    monkeypatch.setattr(gpu_check, "benchmark_ops", fake_benchmark_ops)
    monkeypatch.setattr(gpu_check, "benchmark_skipping", lambda device: [
        {"K": 127, "T": 2048, "B": 8, "C": 512, "H": 8, "mean_width": 0.25, "zero_taps": 0.7, "full_ms": 3.0,
         "ms": 1.5, "speedup": 2.0}])
    report = gpu_check.Report(tmp_path, ENVIRONMENT)
    gpu_check.run_benchmarks(report, tmp_path, repeats=3)
    backends = [argv[argv.index("--backends") + 1 : argv.index("--repeats")] for argv in runs]
    assert backends == [["triton", "unfold"], ["triton"]]
    assert [c.name for c in report.failures] == ["unfold at C=1024 T=2048 K=31 matches naive"]
    met = {t["target"]: t["met"] for t in report.measurements["targets"]}
    assert met["tile skipping at mean width 25%, K=127: 2.00x (target 1.5x)"]
    assert met["triton forward at 80% of the floor (C=512, T=2048, K=31; target 60%)"]
    report.write()
    markdown = (tmp_path / "results.md").read_text()
    assert "| 127 | 2048 | 25% | 70% | 3.00 | 1.50 | 2.00x |" in markdown
    assert "- met: triton forward+backward 4.00x faster than unfold (C=512, T=2048, K=31)" in markdown


def test_pytest_runs_are_checks(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_passes():\n    pass\n\ndef test_fails():\n    assert 1 == 2\n")
    problem = gpu_check.run_pytest(str(tmp_path / "test_one.py"))
    assert problem is not None and "1 failed, 1 passed" in problem
    (tmp_path / "test_one.py").write_text("def test_passes():\n    pass\n")
    assert gpu_check.run_pytest(str(tmp_path / "test_one.py")) is None
