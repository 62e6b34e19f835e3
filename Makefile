# Set-up is idempotent: the venv is rebuilt only when pyproject.toml changes.
VENV ?= .venv
PY := $(VENV)/bin/python
# The local CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup perception train reproduce test test-all lint clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# The default agent starts from the pretrained perception CNN; make it first if it is missing.
PERCEPTION := runs/perception/default/model.pt

$(PERCEPTION): | setup
	$(PY) scripts/train_perception.py

perception: $(PERCEPTION)

train: setup $(PERCEPTION)
	$(PY) scripts/train_agent.py $(ARGS)

reproduce: setup
	$(PY) scripts/reproduce_results.py $(ARGS)

test: setup
	$(PY) -m pytest -q $(ARGS)

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow" $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
