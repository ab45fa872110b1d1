# Two commands on a fresh machine: `make demo` and `make test`. Only python3.11, pip and make are needed (and, for
# the browser tests, Debian's chromium: installed here when missing and we are root with apt-get).
PYTHON ?= python3.11
CHROMIUM ?= /usr/bin/chromium
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
# pytest processes for `make test` (pytest-xdist; each starts its own PostgreSQL and Redis, a test file stays on one):
# much of the suite waits on servers and subprocesses, so 2 halve the run on a 2-core machine. 0 runs in one process.
TEST_WORKERS ?= 2
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: install demo test lint typecheck pytest bench clean chromium firefox-check

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	# torch first and exactly pinned, from PyTorch's CPU wheel index when it answers (the default index may
	# serve the CUDA build: gigabytes); otherwise from the default index. .venv/.torch-index says which ran.
	if $(PY) -c "import urllib.request; urllib.request.urlopen('$(TORCH_CPU_INDEX)/torch/', timeout=5)" 2>/dev/null \
		&& $(PY) -m pip install --quiet --timeout 20 --retries 1 --index-url $(TORCH_CPU_INDEX) torch==2.13.0; then \
		echo "$(TORCH_CPU_INDEX)" > $(VENV)/.torch-index; \
	else \
		$(PY) -m pip install --quiet torch==2.13.0 && echo "default index (pip config)" > $(VENV)/.torch-index; \
	fi
	@echo "torch 2.13.0 installed from: $$(cat $(VENV)/.torch-index)"
	# tinysoundfont declares pyaudio (PortAudio, playback only); the renderer needs none of it.
	$(PY) -m pip install --quiet --no-deps tinysoundfont==0.3.7
	# musicnn ships the MusiCNN weights (TensorFlow checkpoints, read without TensorFlow): its TensorFlow and old
	# numpy requirements are not ours.
	$(PY) -m pip install --quiet --no-deps musicnn==0.1.0
	# BeatNet ships its beat/downbeat CRNN weights (PyTorch state dicts, CC BY 4.0) that sidecar/analyzers/beatnet.py
	# (inference only) reads for the v3 tempo cues (measured in the tempo benchmark, not the default) and its tests;
	# its madmom, numba and audio I/O requirements are not ours.
	$(PY) -m pip install --quiet --no-deps BeatNet==1.1.3
	$(PY) -m pip install --quiet -e '.[demo,test]'
	# Demucs without its declared dependencies (HuggingFace hub, audio I/O); the ones it needs are in pyproject.
	$(PY) -m pip install --quiet --no-deps demucs==4.1.0
	touch $(STAMP)

install: $(STAMP) chromium

# The browser tests drive Debian's chromium through Playwright (no browser download): install it when missing.
chromium:
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "chromium: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "The browser tests need Chromium at $(CHROMIUM): install Debian's 'chromium' package" \
			"(sudo apt-get install --no-install-recommends chromium) or pass CHROMIUM=/path/to/chromium."; \
		exit 1; \
	fi

demo: $(STAMP)
	$(PY) -m sidecar demo $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) chromium
	SONANTICA_TEST_CHROMIUM_EXECUTABLE=$(CHROMIUM) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(PY) scripts/bench_analysis.py $(ARGS)

# Not part of `make test`: the pages in Debian's firefox-esr over WebDriver BiDi (puppeteer-core from npm, pinned in
# scripts/firefox/package-lock.json), with a private PulseAudio null sink for the Studio's audio (needs the Debian
# packages firefox-esr, pulseaudio and nodejs/npm).
firefox-check: $(STAMP)
	npm ci --prefix scripts/firefox --no-audit --no-fund
	$(PY) scripts/firefox_check.py $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist
