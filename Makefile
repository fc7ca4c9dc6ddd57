# hanode: the two set-up-and-go commands are `make demo` and `make test`; both run `make setup` first.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest

.PHONY: setup test unit integration demo demo-vrrp demo-hosts bench clean lab-clean

setup:
	@bash scripts/setup.sh

test: setup
	@bash scripts/test.sh

unit: setup
	$(PYTEST) -q agent/tests/unit

integration: setup
	$(PYTEST) -q tests/integration

demo: setup
	@bash scripts/demo.sh

# The VRRP-only demo: two agents, a client, the VIP moving when the master stops.
demo-vrrp: setup
	@HANODE_DEMO=vrrp bash scripts/demo.sh

# The same story on real hosts: Debian 12 and 13 with systemd as PID 1, over SSH with become.
demo-hosts: setup
	@bash scripts/demo_hosts.sh

bench: setup
	@bash scripts/bench.sh

# Removes every lab this machine still has (namespaces and agents of runs that were killed).
lab-clean: setup
	$(VENV)/bin/hanode lab clean --all

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis tests/output bench-results
