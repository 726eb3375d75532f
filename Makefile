# A fresh machine needs only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test unit integration lint bench clean

$(STAMP): setup.py setup.cfg
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,redis,postgresql]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/scs-agent $(ARGS)

test: $(STAMP) lint
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check scs_supervisor tests bench

bench: $(STAMP)
	$(BIN)/python bench/apply.py
	$(BIN)/python bench/http_api.py

clean:
	rm -rf $(VENV) var build *.egg-info
