# Everything runs from a fresh clone: `make demo` and `make test` build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test clean

venv: $(STAMP)

# torch goes in first and pinned: the CPU build lies on local disk, an unpinned
# torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(PY) -m examples.quickstart

test: venv
	$(PY) -m pytest -q
