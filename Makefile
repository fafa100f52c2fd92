# Two commands: `make run` (the embedded platform on http://127.0.0.1:5000) and
# `make test` (the whole suite against local PostgreSQL and Redis).

# The newest Python Barid supports (3.11 to 3.13) that this machine can run (a name on
# the PATH may be a shim for a version that is not active, so each is tried).
# It is looked up once, on first use, and kept as the interpreter's own path: a pyenv shim
# costs a second or more per call on a loaded machine.
PYTHON ?= $(eval PYTHON := $(or $(shell for p in python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; print(sys.executable)' 2>/dev/null && break; done),python3))$(PYTHON)
VENV   ?= .venv
BIN    := $(VENV)/bin
# --no-build-isolation: Barid's own editable build uses the setuptools and wheel installed
# with pip below, instead of installing them again into a throw-away environment on every
# call. --no-compile: Python writes the .pyc of what it imports when it first imports it,
# instead of pip compiling every module of every package (stripe, phonenumbers...) now.
PIP    := $(BIN)/python -m pip install -q --no-compile --no-build-isolation -c constraints.txt
TRANSLATION_DIRS := $(wildcard app/translations app/*/translations payments/translations payments/*/translations tracking/translations tracking/*/translations shop/translations shop/*/translations)
# Debian packages: fonts for PDFs; chromium for browser tests; zbar and poppler to read
# back the barcodes and pages the tests render; nginx (and openssl for a throw-away
# certificate) to run the shipped deploy/nginx config in front of the app.
RUN_DEBS  := fonts-hosny-amiri fonts-dejavu-core
TEST_DEBS := $(RUN_DEBS) chromium zbar-tools poppler-utils postgresql redis-server nginx openssl

.PHONY: run test bench failover-drill install install-embedded install-dev translations debs-run debs-test services lint clean

# PORT=8080 make run: another port than 5000 (bench/fresh_clone.py uses a free one).
run: install-embedded translations debs-run
	$(BIN)/barid run $(if $(PORT),--port $(PORT))

test: install-dev translations debs-test services
	$(BIN)/ruff check .
	$(BIN)/mypy app/
	$(BIN)/pytest

# Benchmarks (never part of `make test`): each makes and drops its own PostgreSQL
# database; the table compares Barid with its baselines. wrk drives the tracking lookups.
bench: install-dev translations debs-test services
	@./scripts/ensure-debs wrk
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The two-site failover drill (deploy/drill.sh): PostgreSQL and Redis failovers under load.
failover-drill: install-dev translations debs-test
	./deploy/drill.sh

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy app/

# The interpreter's own pip puts today's pip, setuptools and wheel into the new environment
# (5 s here, where ensurepip's older pip, compiled, then upgraded took 15 s); ensurepip when
# that pip is missing or too old to know --python.
BOOT := install -q --no-compile -c constraints.txt --upgrade pip setuptools wheel
$(BIN)/python:
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python $(BOOT) 2>/dev/null || \
		{ $(BIN)/python -m ensurepip -q && $(BIN)/python -m pip $(BOOT); }

install: $(VENV)/.installed
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

# What `make run` adds to the production install: localstripe, for TEST MODE card payments.
# From nothing, one pip call installs both (one resolution instead of two): it stands for
# .installed as well.
install-embedded: $(VENV)/.installed-embedded
$(VENV)/.installed-embedded: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[embedded]'
	touch $(VENV)/.installed $@

install-dev: $(VENV)/.installed-dev
$(VENV)/.installed-dev: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[dev]'
	touch $(VENV)/.installed $@

# One Python process for every catalog, not a pybabel start-up per directory.
translations: install
	@$(BIN)/python scripts/compile-translations $(TRANSLATION_DIRS)

debs-run:
	@./scripts/ensure-debs $(RUN_DEBS)

debs-test:
	@./scripts/ensure-debs $(TEST_DEBS)

# Start the real services the tests use if they are installed but stopped.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start
	@for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in 1 2 3 4 5; do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .mypy_cache
