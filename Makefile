# One command per task, the same locally and in CI. Each target creates .venv when
# missing and installs what it needs; nothing has to be installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/steadybot demo --baseline --json demo-report.json

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	@command -v wrk >/dev/null || (apt-get install -y wrk >/dev/null 2>&1 || sudo apt-get install -y wrk) \
		|| (echo "make bench needs wrk: apt-get install wrk" >&2; exit 1)
	$(BIN)/python benchmarks/endpoint/run.py
	$(BIN)/python benchmarks/emulator/run.py
	$(BIN)/python benchmarks/ratelimits/run.py
	$(BIN)/python benchmarks/memory/run.py
	$(BIN)/python benchmarks/coordination/run.py
	$(BIN)/python -m benchmarks.crash.run

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
