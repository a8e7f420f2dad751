# Conveyor: `make run` serves everything on http://127.0.0.1:8000, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# Tests on SQLite use a file, not memory: the worker-thread, crash and browser
# tests need a second connection (or process) writing to the same database.
export CONVEYOR_TEST_SQLITE ?= $(CURDIR)/var/test.sqlite3
# The suite runs in parallel processes (pytest-xdist), one per core; each gets its
# own test database (pytest-django suffixes its name: test.sqlite3_gw0, ..._gw1).
TEST_WORKERS ?= auto

.PHONY: run test test-fast lint check bench clean bubblewrap

# Build commands run in a bubblewrap sandbox (docs/security.md). Installed here when
# this is root on a Debian-like system; otherwise the plain instructions.
bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "== installing bubblewrap (the sandbox of build commands)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
	      || echo "bubblewrap could not be installed: build commands will run UNSANDBOXED (CONVEYOR_SANDBOX=auto) or be refused (required)"; \
	  else \
	    echo "bubblewrap (bwrap) is not installed: build commands will run UNSANDBOXED (CONVEYOR_SANDBOX=auto)"; \
	    echo "or be refused (CONVEYOR_SANDBOX=required). Install it as root: apt-get install bubblewrap"; \
	    echo "(Fedora/RHEL: dnf install bubblewrap; Arch: pacman -S bubblewrap). See docs/security.md."; \
	  fi; }

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

run: $(VENV)/.installed bubblewrap
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py ensure_superuser
	$(PY) manage.py load_demo
	PORT=$(PORT) $(PY) manage.py serve

# The whole suite: everything but the browser tests, then the browser tests in
# their own process (Playwright's sync API and pytest-asyncio cannot share one).
test: $(VENV)/.installed bubblewrap
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run -v0
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -m "not e2e" -n $(TEST_WORKERS)
	$(VENV)/bin/pytest -m e2e; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

test-fast: $(VENV)/.installed
	$(VENV)/bin/pytest -m "not e2e" -x -n $(TEST_WORKERS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
