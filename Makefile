# Two commands matter: `make run` (the service on embedded defaults) and `make test`.
# Both bootstrap a local virtualenv from nothing but python3 (3.11+).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

LOCK := requirements.lock
UV := $(VENV)/bin/uv
UV_VERSION := uv>=0.13,<0.14
# pip's own index, when one is configured (uv does not read pip's configuration).
UV_INDEXES = $(shell $(PY) -m pip config get global.index-url 2>/dev/null | sed 's/^/--index-url /')

.PHONY: run run-fakes emulator test fuzz lint typecheck bench screenshots lock clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Every dependency (the dev extra included) at the version and hashes of requirements.lock;
# the project itself on top, with no dependency resolution of its own.
$(STAMP): pyproject.toml $(LOCK) | $(PY)
	$(PY) -m pip install -q --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# Re-resolve pyproject.toml (with the dev extra) into requirements.lock: pinned, hashed, for
# every platform and Python >= 3.11. uv reads the same indexes pip is configured with
# (pip config), so this works wherever `pip install` does.
# The file is replaced only when its content changes (the existing pins are uv's preferences),
# so a refresh that changes nothing does not make the next run reinstall.
lock: | $(PY)
	$(PY) -m pip install -q '$(UV_VERSION)'
	cp $(LOCK) $(LOCK).new 2>/dev/null || true
	$(UV) pip compile pyproject.toml --extra dev --generate-hashes --universal \
	  --python-version 3.11 --custom-compile-command 'make lock' --quiet $(UV_INDEXES) -o $(LOCK).new
	if cmp -s $(LOCK).new $(LOCK); then rm $(LOCK).new; else mv $(LOCK).new $(LOCK); fi

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
