# Everything runs from a fresh clone: `make demo` and `make test` build .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test services fleet-test

venv: $(STAMP)

# torch goes in first and pinned: the CPU build lies on local disk, an unpinned
# torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

demo: venv
	$(PY) -m examples.quickstart

# The fleet tests need a Redis on 127.0.0.1:6379 (each test session takes an
# empty database of it); start one when nothing answers there. RabbitMQ tests
# run when 127.0.0.1:5672 answers and are skipped otherwise.
services:
	@if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then \
		echo "starting redis-server on 127.0.0.1:6379"; \
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no; \
		sleep 1; \
	fi

# Four pytest processes, a test module to each: most fleet tests wait on
# workers, heartbeats and time limits, so their waits overlap even on two
# cores. TEST_PROCESSES=0 runs everything in this one process. The 30 slowest
# tests are listed at the end, to see where the time goes.
TEST_PROCESSES ?= 4

test: venv services
	$(PY) -m pytest -q -n $(TEST_PROCESSES) --dist loadfile --durations=30

# The fleet as containers on this machine, from nothing: a private Docker
# engine, images built here, the compose stack, scaling, a worker killed
# mid-task, Flower's API, a Prometheus scrape; everything removed at the end
# (see deploy/fleet-test/run.sh). Needs root; `deploy/fleet-test/run.sh
# --can-run` says whether this machine can.
fleet-test: venv
	deploy/fleet-test/run.sh
