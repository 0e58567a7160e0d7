# halab: two commands do everything, as root: `sudo make demo` and `sudo make test`.
VENV := .venv
PYTEST := $(VENV)/bin/pytest

.PHONY: setup demo test test-fast test-unit lint clean

setup:            ## install packages, start Open vSwitch, build .venv (idempotent)
	@bash vagrant/provision.sh

demo: setup       ## the default Active-Standby failover, measured and plotted
	$(VENV)/bin/halab demo

test: setup lint  ## the whole suite, Mininet scenarios included (a skip would be a failure)
	HALAB_REQUIRE_MININET=1 $(PYTEST)

test-fast: setup  ## everything but the slow failover measurements
	HALAB_REQUIRE_MININET=1 $(PYTEST) -m "not slow"

test-unit:        ## unit tests only: no root, a few seconds
	$(PYTEST) tests/unit

lint:
	$(VENV)/bin/ruff check .

clean:            ## remove what an interrupted halab run left behind (only halab's own things)
	$(VENV)/bin/halab clean
