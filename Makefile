# Entry points that set everything up on a fresh clone: `make demo`, `make glue` and `make test`.
# TORCH selects the PyTorch build, installed before the package so that pip keeps it, e.g.
#   make test TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install demo glue test benchmark clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(BIN)/python scripts/demo_layer.py

glue: install
	$(BIN)/python scripts/run_glue.py configs/glue/negation_scope.yaml --overwrite_output_dir

test: install
	$(BIN)/python -m pytest -q

benchmark: install
	$(BIN)/python scripts/benchmark_ops.py --output_dir benchmarks/ops_cpu
	$(BIN)/python scripts/benchmark_model.py --output_dir benchmarks/model_cpu

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
