# Two commands matter: `make run` (the service on embedded defaults) and `make test`.
# Both bootstrap a local virtualenv from nothing but python3 (3.11+).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run run-fakes emulator test fuzz lint typecheck bench screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m app

# The app with BFL_API_KEY, RUNWAYML_API_SECRET and REPLICATE_API_TOKEN set, against local fake
# providers and fake-gcs-server on 127.0.0.1 (ports 8701-8704); Ctrl-C stops everything.
run-fakes: $(STAMP)
	$(PY) -m tests.providers.fakes --run-app

emulator: $(STAMP)
	$(PY) -m emulator

test: $(STAMP)
	$(PY) -m pytest -q

# schemathesis against the running app, every phase and many examples (minutes; `make test`
# runs a short profile of the same test).
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} FUZZ_PHASES=examples,coverage,fuzzing,stateful \
		$(PY) -m pytest -q -s -p no:randomly tests/app/test_openapi.py -k schemathesis --timeout 1800

lint: $(STAMP)
	$(PY) -m nox -s lint typecheck

bench: $(STAMP)
	$(PY) -m benchmarks

# Retake the README's screenshots (docs/screenshots/*.png) from the browser tests.
screenshots: $(STAMP)
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q tests/browser -k screenshot

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
