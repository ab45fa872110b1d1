# Two commands on a fresh machine: `make demo` and `make test`. Only python3.11, pip and make are needed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	# torch first and exactly pinned: a looser requirement would pull gigabytes of CUDA packages.
	$(PY) -m pip install --quiet torch==2.13.0
	# tinysoundfont declares pyaudio (PortAudio, playback only); the renderer needs none of it.
	$(PY) -m pip install --quiet --no-deps tinysoundfont==0.3.7
	# musicnn ships the MusiCNN weights (TensorFlow checkpoints, read without TensorFlow): its TensorFlow and old
	# numpy requirements are not ours.
	$(PY) -m pip install --quiet --no-deps musicnn==0.1.0
	$(PY) -m pip install --quiet -e '.[demo,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m sidecar demo $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest $(ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(PY) scripts/bench_analysis.py $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist
