# Two commands for people: `make run` and `make test`. Everything else is what they build on.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-sqlite test-postgres lint typecheck clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(PY) -m bot run

# The whole suite on SQLite, then again on a scratch PostgreSQL database when one is reachable.
test: install lint typecheck test-sqlite test-postgres

test-sqlite: install
	$(PY) -m pytest -q

test-postgres: install
	$(PY) scripts/pg_scratch.py $(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy handlers storage bot broadcasts

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
