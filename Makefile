# Canopy: `make demo` runs the product on its embedded default; `make test` runs every check.
# Each target creates .venv and installs what it needs, so a fresh machine needs nothing else.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint typecheck unit postgres bench bench-smoke clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/canopy demo

test: $(STAMP) postgres lint typecheck unit bench-smoke

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src/canopy

# Two processes, each taking whole test files (module fixtures such as a running
# `canopy up` stay with their tests); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
unit: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

# The database tests run on SQLite and on the local PostgreSQL. Start it if it is installed
# but stopped; if there is none, those tests skip with one line saying so (never under CI).
postgres:
	@if command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q; then :; \
	elif command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start || true; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done; \
	else echo "PostgreSQL is not installed here: the PostgreSQL tests will be skipped"; fi

bench: $(STAMP) postgres
	$(BIN)/python -m bench.run

# Every benchmark scenario at tiny sizes, once, on SQLite: it must still run (not a figure).
bench-smoke: $(STAMP)
	$(BIN)/python -m bench.run --smoke --all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
