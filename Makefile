# titanoframe — the two commands a user needs are `make demo` and `make test`.
# Everything else here is a step those two depend on.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
APT_PACKAGES := mosquitto mosquitto-clients openscad xvfb xauth openssl
SYSTEM_BINARIES := mosquitto mosquitto_pub mosquitto_sub openscad xvfb-run openssl
PYTEST_ARGS ?=

.PHONY: all test lint typecheck pytest demo case bundle sysdeps venv clean

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# System binaries come from Debian packages. As root we install them; otherwise we say what to run.
sysdeps:
	@missing=""; for b in $(SYSTEM_BINARIES); do command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages for:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	  else \
	    echo "missing:$$missing — run: sudo apt-get install $(APT_PACKAGES)"; \
	  fi; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy common bridge renderer tools case tests

pytest: $(STAMP) sysdeps
	$(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)

test: lint typecheck pytest

case: $(STAMP) sysdeps
	$(PY) case/build.py

# make bundle MPY_CROSS=path/to/mpy-cross: compile with CircuitPython 10's own compiler (README)
bundle: $(STAMP)
	$(PY) -m tools.bundle $(if $(MPY_CROSS),--mpy-cross $(MPY_CROSS))

demo: $(STAMP) sysdeps
	$(PY) -m tools.demo

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
