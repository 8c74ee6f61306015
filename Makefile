# Django async tutorial. `make help` lists the targets.
# PYTHON picks the interpreter; each interpreter gets its own venv under .venv/.
# LESSONS="01 02" limits the notebook targets to those lessons.
# Windows has no make: the README gives the same steps as plain commands.

PYTHON ?= python3
LESSONS ?=
PORT ?= 8888

# python3.13 is found on PATH, else among pyenv's installed versions; else it says what to type.
PYTHON_PATH := $(shell sh .ci/find-python $(PYTHON))
ifeq ($(PYTHON_PATH),)
$(error No Python '$(PYTHON)' here (see the message above))
endif
PY_TAG := $(shell $(PYTHON_PATH) -c 'import sys; print("py%d%d" % sys.version_info[:2])' 2>/dev/null)
VENV := .venv/$(PY_TAG)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-learner
DEV_STAMP := $(VENV)/.installed-maintainer
NOTEBOOKS := $(if $(strip $(LESSONS)),$(foreach n,$(LESSONS),$(wildcard notebooks/$(n)_*.ipynb)),$(wildcard notebooks/[0-9][0-9]_*.ipynb))
# With LESSONS, only those lessons' own tests run (tests/conftest.py maps tests to lessons).
UNIT_TESTS := tests --ignore=tests/e2e $(if $(strip $(LESSONS)),--lessons "$(LESSONS)")
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with .nbval-sanitize.cfg --nbval-cell-timeout=300
# Test workers: twice the cores (most tests wait on sockets, sleeps and kernels, not on the
# CPU), at most 8.
JOBS ?= $(shell $(PYTHON_PATH) -c 'import os; print(max(2, min(8, 2 * (os.cpu_count() or 1))))')

.DEFAULT_GOAL := help
.PHONY: help venv lab test save bench lint postgres clean-venv exercises doctor reset html e2e test-latest

help: ## Show this help
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  Variables: PYTHON=python3.13  LESSONS=\"01 02\"  PORT=8888  FORCE=1 (exercises, reset)"

# The venvs are rebuilt when their lists change; otherwise nothing is installed, so after
# the first setup every target works offline. Learners get requirements.txt and the project;
# the targets that test, save, lint or measure add the maintainers' tools.
$(STAMP): requirements.txt pyproject.toml .ci/install-venv
	@FOR=learner PYTHON="$(PYTHON_PATH)" VENV="$(VENV)" sh .ci/install-venv
	@touch $@

$(DEV_STAMP): $(STAMP) .ci/requirements-maintainer.txt
	@FOR=maintainer PYTHON="$(PYTHON_PATH)" VENV="$(VENV)" sh .ci/install-venv
	@touch $@

venv: $(STAMP) ## Create or update the learner's venv for PYTHON

lab: $(STAMP) ## Open JupyterLab at your copy of lesson 00 (made if missing, never overwritten)
	$(BIN)/python -m tutorial_project.course.lab --port $(PORT)

test: $(DEV_STAMP) ## Run the tests and strict nbval over the notebooks (LESSONS=.. : those lessons and their tests)
	@$(BIN)/python -c 'import django, platform; print(f"== Python {platform.python_version()}, Django {django.get_version()} ($(VENV))")'
	TUTORIAL_NOTEBOOKS="$(NOTEBOOKS)" PYTHONPATH=tests/plugins $(BIN)/python -m pytest -p no_iri_grammar -p nbval_twice -q -rs -p no:cacheprovider -n $(JOBS) $(UNIT_TESTS) --dist loadfile $(NBVAL) $(NOTEBOOKS)

save: $(DEV_STAMP) ## Re-run notebooks top to bottom and save their outputs (LESSONS=.. to pick)
	$(BIN)/python .ci/save_notebooks.py $(NOTEBOOKS)

lint: $(DEV_STAMP) ## ruff over the project, the tests, the notebooks and the site's configuration
	$(BIN)/ruff check tutorial_project tests notebooks lesson_tests .ci .book

bench: $(DEV_STAMP) ## Measure setup, bring-up and per-notebook times, and the lessons' ratios
	$(BIN)/python -m tutorial_project.course.benchmarks $(NOTEBOOKS)

postgres: ## Start a local PostgreSQL on 127.0.0.1 (installs it with apt-get as root) for tests/test_postgres.py
	@url=$$(sh .ci/postgres-up) && echo "PostgreSQL is up. Run:  export DATABASE_URL=$$url"

clean-venv: ## Remove every venv under .venv/
	rm -rf .venv

# --- Workshop kit -------------------------------------------------------------------------
# Generated and ignored by git. `make reset` removes the databases, the HTML site and the
# browser test's screenshots; the learner's copies hold their work and go only with FORCE=1.
LEARNER_COPIES := notebooks/learner
SITE := .site
TEST_OUTPUT := .test-output
GENERATED := .data $(SITE) .book/_build $(TEST_OUTPUT) notebooks/.ipynb_checkpoints

exercises: $(STAMP) ## Write missing learner copies to notebooks/learner/ (FORCE=1 overwrites them)
	$(BIN)/python -m tutorial_project.course.learner_copies $(if $(FORCE),--force) $(NOTEBOOKS)

# No venv needed: with a bare interpreter the doctor says how to make one.
doctor: ## Preflight for attendees: versions, packages, kernel, ports, disk (exit 1 if blocked)
	@if [ -x $(BIN)/python ]; then PORT=$(PORT) $(BIN)/python -m tutorial_project.course.doctor; \
	else PORT=$(PORT) $(PYTHON_PATH) tutorial_project/course/doctor.py; fi

reset: ## Remove databases and generated files; your lesson copies too only with FORCE=1
	rm -rf $(GENERATED) $(if $(FORCE),$(LEARNER_COPIES))
	@echo "Clean. $(if $(FORCE),Your copies in $(LEARNER_COPIES)/ were removed too,Your copies in $(LEARNER_COPIES)/ are kept (FORCE=1 removes them)). Lessons are untouched."

html: $(DEV_STAMP) ## Build the course as a book site with its stored outputs in .site/ (open .site/index.html)
	$(BIN)/python -m tutorial_project.course.book --to $(SITE) $(NOTEBOOKS)

e2e: $(DEV_STAMP) ## Browser tests in headless Chromium: the lessons in JupyterLab, the book site (screenshots in .test-output/)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e -rs

# The pins hold the lessons still; this says what the newest releases would change.
test-latest: $(DEV_STAMP) ## Run each lesson against the newest Django, asgiref, httpx and servers; print a table
	$(BIN)/python -m tutorial_project.course.latest --python $(PYTHON_PATH) $(NOTEBOOKS)
