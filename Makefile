# The two commands a newcomer runs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NATIVE := .native
NATIVE_STAMP := $(NATIVE)/.built

.PHONY: run test check lint typecheck unit fuzz-api test-cassandra test-cluster test-cluster-moves cassandra-start cassandra-stop \
        cluster-start cluster-stop test-ctool test-ctool-se ctool-packages bench bench-tools bench-commands clean native test-native \
        monitoring-tools test-monitoring pebble test-acme

$(STAMP): pyproject.toml
	@echo "Creating the virtual environment in $(VENV) and installing the project with its dependencies"
	@echo "(about half a minute on a fresh clone; pip reports each step)."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar off -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@echo "Serving the sample restaurant application on http://127.0.0.1:8822 (data in ./.voedger), tokens required."
	@echo "Try:  curl http://127.0.0.1:8822/api/check   -- then sign up and go on with README.md, section 'Try it'."
	$(VENV)/bin/voedger server --app untill/restaurant=examples/restaurant

# Everything: static checks, unit and contract tests (as Python, then as the native build), the
# one-node Cassandra tier (native), the monitoring tier (it installs Chromium, which the cluster tier uses
# too), the cluster tier, ACME against Pebble, ctool on SSH test nodes.
test: check unit test-native test-cassandra test-monitoring test-cluster test-acme test-ctool

check: lint typecheck

lint: $(STAMP)
	$(VENV)/bin/ruff check setup.py src tests benchmarks examples
	$(VENV)/bin/ruff format --check setup.py src tests benchmarks examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The unit tier on two pytest-xdist workers (a module's tests stay on one worker, so its fixtures
# are set up once); UNIT_WORKERS=0 runs it in this process.
UNIT_WORKERS ?= 2
UNIT := -m "not cassandra and not cluster and not monitoring and not acme and not ctool" -q -n $(UNIT_WORKERS) --dist loadfile

unit: $(STAMP)
	$(PY) -m pytest $(UNIT)

# A longer schemathesis run of a server against the API's OpenAPI document (the unit tier sends
# 12 examples per operation; this sends 300).
fuzz-api: $(STAMP)
	VOEDGER_FUZZ_EXAMPLES=300 $(PY) -m pytest -q tests/router/test_openapi.py

# The native build: the command path compiled by mypyc into $(NATIVE), a complete install of the
# package that PYTHONPATH=$(NATIVE) puts before the source tree (docs/design.md, "The native build").
$(NATIVE_STAMP): $(STAMP) setup.py pyproject.toml $(shell find src -name '*.py')
	rm -rf $(NATIVE) build
	VOEDGER_NATIVE=1 $(PY) -m pip install --quiet --no-build-isolation --no-deps --target $(NATIVE) .
	touch $@

native: $(NATIVE_STAMP)

test-native: native
	PYTHONPATH=$(NATIVE) VOEDGER_EXPECT_NATIVE=1 $(PY) -m pytest $(UNIT)

cassandra-start: $(STAMP)
	$(PY) -m voedger.devtools.cassandra start --nodes 1

cassandra-stop: $(STAMP)
	$(PY) -m voedger.devtools.cassandra stop --nodes 1

# On Cassandra the native build (the unit tier runs both builds; the cluster and ctool tiers run
# the Python build's servers on Cassandra). CASSANDRA_BUILD=python runs it as Python.
CASSANDRA_BUILD ?= native
test-cassandra: cassandra-start native
	$(if $(filter native,$(CASSANDRA_BUILD)),PYTHONPATH=$(NATIVE)) \
	  VOEDGER_TEST_CASSANDRA=127.0.0.1:9042 $(PY) -m pytest -m cassandra -q

cluster-start: $(STAMP)
	$(PY) -m voedger.devtools.cassandra start --nodes 3

cluster-stop: $(STAMP)
	$(PY) -m voedger.devtools.cassandra stop --nodes 3

# The three-node tier: runs the cluster, then stops it so that the machine gets its memory back.
test-cluster: $(STAMP)
	$(MAKE) cassandra-stop
	$(MAKE) cluster-start
	VOEDGER_TEST_CLUSTER=127.0.0.1,127.0.0.2,127.0.0.3 $(PY) -m pytest -m cluster -q; \
	  rc=$$?; $(MAKE) cluster-stop; exit $$rc

# Only the cluster scenarios whose partitions move under load (a process joining and leaving, a
# rolling restart); test-cluster runs them too.
test-cluster-moves: $(STAMP)
	$(MAKE) cassandra-stop
	$(MAKE) cluster-start
	VOEDGER_TEST_CLUSTER=127.0.0.1,127.0.0.2,127.0.0.3 $(PY) -m pytest -m "cluster and moves" -q; \
	  rc=$$?; $(MAKE) cluster-stop; exit $$rc

# Debian's prometheus, prometheus-alertmanager and chromium, installed once (dpkg is asked first).
monitoring-tools: $(STAMP)
	$(PY) -m voedger.devtools.monitoring install --chromium

# The alert rules (promtool), an alert through a real Prometheus and Alertmanager to a webhook,
# the dashboards' queries against a real Prometheus, the monitor page in a headless Chromium.
test-monitoring: monitoring-tools
	$(PY) -m pytest -m monitoring -q

# Pebble, Let's Encrypt's test ACME server, and its DNS helper, built once with the machine's Go
# (go install, into .devdata/pebble).
pebble: $(STAMP)
	$(PY) -m voedger.devtools.pebble install

# voedger server --acme-domain against a real Pebble: ordering, reuse after a restart, renewal,
# a failing challenge retried.
test-acme: pebble
	$(PY) -m pytest -m acme -q --durations=5 tests/certificates

# ctool installs clusters over SSH onto test nodes: sshd's on 127.0.0.11, .12, ... (Debian's
# openssh-server; supervisor runs the services), installed here if missing.
ctool-packages: $(STAMP)
	$(PY) -m voedger.devtools.sshnodes ensure-packages

# With the SE module: one three-node cluster installed once, then a rolling upgrade under load,
# backup and restore, and the replacement of a dead node by a new host on it (about 15 minutes).
test-ctool: ctool-packages pebble
	$(PY) -m pytest -m ctool -q --durations=8 tests/ctool

# The SE module alone.
test-ctool-se: ctool-packages
	$(PY) -m pytest -m ctool -q --durations=5 tests/ctool/test_se.py

bench: $(STAMP)
	$(PY) benchmarks/storage.py

# wrk (Debian package) drives the command benchmark with less of the shared CPU than Python.
bench-tools:
	@command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null || sudo apt-get install -y wrk >/dev/null; }
	@wrk --version | head -1

bench-commands: native bench-tools
	$(PY) benchmarks/commands.py --native

clean:
	rm -rf $(VENV) $(NATIVE) build .mypy_cache .ruff_cache .pytest_cache
