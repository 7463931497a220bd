PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test check unit bench clean console-screenshots

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(STAMP)

run: $(STAMP)
	$(BIN)/dobby serve

check: $(DEV_STAMP)
	$(BIN)/ruff check dobby tests bench
	$(BIN)/ruff format --check dobby tests bench
	$(BIN)/mypy

unit: $(DEV_STAMP)
	$(BIN)/pytest -q

# Three workers on two cores: most tests wait on servers, processes and databases (611 s serially, 370 s so).
test: check
	$(BIN)/pytest -q -n 3

console-screenshots: $(DEV_STAMP)
	DOBBY_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(BIN)/pytest -q tests/e2e/test_console_browser.py

bench: $(DEV_STAMP)
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var/*.db var/*.db-*
