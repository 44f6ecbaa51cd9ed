# Clearcut. `make run` starts the embedded stack; `make test` installs and runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_PROBE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
PYTEST_ARGS ?=

.PHONY: install run test lint format test-sqlite test-postgres bench clean lock

UV_VERSION := 0.13.9

# uv (from PyPI) installs the locked set in seconds; pip does the same, slower, if uv fails.
# Silent (@), with its note on stderr: `make bench` prints bare JSON even when it installs first.
$(STAMP): pyproject.toml requirements.lock
	@echo "installing the locked package set into $(VENV)" >&2
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)" \
		&& $(BIN)/uv pip install --quiet --python $(BIN)/python -c requirements.lock -e '.[dev]' \
		|| $(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/marketplace dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-sqlite: $(STAMP)
	@echo "== test suite on SQLite =="
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest $(PYTEST_ARGS)

# PostgreSQL: TEST_DATABASE_URL if set, else the local server if it answers; a fresh
# database is created for the run and dropped after it.
test-postgres: $(STAMP)
	@url="$${TEST_DATABASE_URL:-$$($(BIN)/python scripts/pg_probe.py '$(PG_PROBE_URL)')}"; \
	if [ -z "$$url" ]; then \
		echo "== PostgreSQL not reachable at $(PG_PROBE_URL): SQLite pass only (set TEST_DATABASE_URL) =="; \
	else \
		echo "== test suite on PostgreSQL =="; \
		TEST_DATABASE_URL="$$url" $(BIN)/python -m pytest $(PYTEST_ARGS); \
	fi

test: lint test-sqlite test-postgres

bench: $(STAMP)
	@$(BIN)/python -m bench

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
