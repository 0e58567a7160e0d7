# halab: two commands do everything, as root: `sudo make demo` and `sudo make test`.
VENV := .venv
PYTEST := $(VENV)/bin/pytest

.PHONY: setup demo test test-fast test-unit soak mutation lint clean

setup:            ## install packages, start Open vSwitch, build .venv (idempotent)
	@bash vagrant/provision.sh

demo: setup       ## the default Active-Standby failover, measured and plotted
	$(VENV)/bin/halab demo

test: setup lint  ## the whole suite, Mininet scenarios included (a skip would be a failure)
	HALAB_REQUIRE_MININET=1 $(PYTEST) --durations=20

test-fast: setup  ## everything but the slow failover measurements
	HALAB_REQUIRE_MININET=1 $(PYTEST) -m "not slow"

test-unit:        ## unit tests only: no root, no Open vSwitch; without `make setup`'s .venv, one of their own
	@if [ -x $(PYTEST) ]; then $(PYTEST) tests/unit; else \
	    [ -x .venv-unit/bin/pytest ] || { python3 -m venv .venv-unit && .venv-unit/bin/pip install -q -e '.[test]'; }; \
	    .venv-unit/bin/pytest tests/unit; fi

SOAK_RUNS ?= 5
soak: setup       ## the whole suite SOAK_RUNS times in a row (default 5): a flaky test shows here first
	@mkdir -p runs/soak; failed=0; \
	for i in $$(seq 1 $(SOAK_RUNS)); do \
	    log=runs/soak/run-$$i.log; \
	    if HALAB_REQUIRE_MININET=1 $(PYTEST) -q -p no:cacheprovider >$$log 2>&1; \
	    then echo "soak run $$i/$(SOAK_RUNS): $$(tail -1 $$log)"; \
	    else failed=$$((failed + 1)); echo "soak run $$i/$(SOAK_RUNS) FAILED ($$log):"; grep -E '^(FAILED|ERROR) ' $$log; fi; \
	done; \
	echo "soak: $$failed of $(SOAK_RUNS) runs failed"; [ $$failed -eq 0 ]

mutation:         ## the mutation score of the pure modules against their own unit tests (a few minutes; not part of `test`)
	@venv=$(VENV); [ -x $$venv/bin/python ] || { venv=.venv-unit; [ -x $$venv/bin/python ] || python3 -m venv $$venv; }; \
	[ -x $$venv/bin/mutmut ] || $$venv/bin/pip install --quiet --disable-pip-version-check -e '.[test,mutation]'; \
	$$venv/bin/python -m tests.mutation

lint:
	$(VENV)/bin/ruff check .

clean:            ## remove what an interrupted halab run left behind (only halab's own things)
	$(VENV)/bin/halab clean
