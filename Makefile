# The two commands for a fresh machine: `make demo` and `make test`. Everything else is help.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: demo test install migrate lint format serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the declared dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev,encoder]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

## demo: set up, load the demo school and run web + worker + beat (Ctrl-C stops all)
demo: migrate
	$(BIN)/python manage.py load_demo
	BIN=$(BIN) scripts/run_demo.sh

## serve: web + worker + beat without reloading the demo data
serve: migrate
	BIN=$(BIN) scripts/run_demo.sh

## test: the whole suite (SQLite + filesystem broker, or PostgreSQL + Redis when configured)
test: install
	$(BIN)/pytest

## lint: ruff, the import contracts and the migration check
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var/broker var/celerybeat-schedule* var/static
