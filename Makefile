VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint format stop install

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

PORT ?= 8000

# Ctrl-C reaches honcho, which stops every process; the trap keeps this shell alive to then
# stop the embedded PostgreSQL and Redis (a handler, not an ignore, so children still get it).
run: $(STAMP)
	$(PY) manage.py bootstrap
	trap 'true' INT TERM; VIGIL_PORT=$(PORT) $(VENV)/bin/honcho start; \
	  $(PY) -c "from config.embedded import stop_all; stop_all()"

test: $(STAMP)
	$(PY) -m pytest

# The benchmarks (bench/run.py): a table on stdout and bench/results.json; never part of `test`.
bench: $(STAMP)
	$(PY) -m bench.run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

stop: $(STAMP)
	$(PY) -c "from config.embedded import stop_all; stop_all()"
