# Quick start: `make demo` (a full local deployment and round trip), `make test` (the test suite).
VENV ?= .venv
PYTHON ?= python3
APT_PACKAGES = swig libssl-dev runit
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo demo-stop demo-storage test test-dirac9 bench lint system-packages

$(VENV)/.installed: setup.cfg pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[test]"
	touch $@

# M2Crypto builds from source (swig, OpenSSL headers); runit supervises the services.
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "Installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

demo: $(VENV)/.installed
	VENV_BIN=$(abspath $(VENV))/bin bash tools/demo.sh

demo-stop:
	VENV_BIN=$(abspath $(VENV))/bin bash tools/demo-stop.sh

# A smaller demo: one StorageElement round trip on an embedded S3 server, no services.
demo-storage: $(VENV)/.installed
	$(VENV)/bin/dirac-s3-demo --folder demo-storage

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q

# Against a real DIRAC 9 client (its own virtualenv, made once; a few minutes).
DIRAC9_VENV ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/dirac-9.1.22
test-dirac9: $(VENV)/.installed
	[ -x $(DIRAC9_VENV)/bin/python ] || bash tools/install-dirac9.sh $(DIRAC9_VENV)
	DIRAC9_PYTHON=$(DIRAC9_VENV)/bin/python $(VENV)/bin/pytest -q -m dirac9 tests/dirac9

bench: $(VENV)/.installed
	PYTHON=$(VENV)/bin/python bash benchmarks/run

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
