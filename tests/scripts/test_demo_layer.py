import re

import pytest


def test_demo_learns_the_widths_the_task_needs(load_script, capsys):
    demo = load_script("demo_layer")
    assert demo.main([]) == 0
    out = capsys.readouterr().out
    assert "needed extents: left 2, right 1" in out
    rows = re.findall(r"^\s*\d+\s+([\d.]+)\s+([\d.]+)$", out, flags=re.M)
    assert len(rows) == 4
    for left, right in rows:
        # Needed: 2 to the left, 1 to the right, out of 7; the ramp lets extents sit a little below.
        assert 1.5 <= float(left) <= 3.0 and 0.5 <= float(right) <= 2.0, out
    held_out = float(re.search(r"held-out mse ([\d.]+)", out).group(1))
    assert held_out < 0.05  # the target has variance 2


def test_demo_rejects_offsets_beyond_the_kernel(load_script, capsys):
    demo = load_script("demo_layer")
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--offsets", "-9", "1"])
    assert exit_info.value.code != 0
    assert "--offsets must lie in [-7, 7] for kernel_size 15" in capsys.readouterr().err
