# One entry point for everything a newcomer does. Needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint run psql bench migrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The whole stack until Ctrl-C (see README "Run it"); e.g. make run ARGS='--pipeline-port 8080'
run: $(STAMP)
	$(BIN)/python -m devstack $(ARGS)

# psql on the stack's database (the embedded one, or DATABASE_URL)
psql: $(STAMP)
	$(BIN)/python -m devstack.psql $(ARGS)

migrate: $(STAMP)
	$(BIN)/python -m pipeline_service.db.migrate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
