# Django async tutorial. `make help` lists the targets.
# PYTHON picks the interpreter; each interpreter gets its own venv under .venv/.
# LESSONS="01 02" limits the notebook targets to those lessons.

PYTHON ?= python3
LESSONS ?=
PORT ?= 8888

PY_TAG := $(shell $(PYTHON) -c 'import sys; print("py%d%d" % sys.version_info[:2])' 2>/dev/null)
ifeq ($(PY_TAG),)
$(error PYTHON=$(PYTHON) does not run. Give an interpreter, e.g. make test PYTHON=python3.13)
endif
VENV := .venv/$(PY_TAG)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(if $(strip $(LESSONS)),$(foreach n,$(LESSONS),$(wildcard notebooks/$(n)_*.ipynb)),$(wildcard notebooks/[0-9][0-9]_*.ipynb))
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with .nbval-sanitize.cfg --nbval-cell-timeout=300
JOBS ?= auto
# JupyterLab refuses to run as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

.DEFAULT_GOAL := help
.PHONY: help venv lab test save bench lint postgres clean-venv exercises doctor reset html e2e

help: ## Show this help
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  Variables: PYTHON=python3.13  LESSONS=\"01 02\"  PORT=8888  FORCE=1 (exercises)"

# The venv is rebuilt when requirements.txt changes; otherwise nothing is installed,
# so after the first setup every target works offline.
$(STAMP): requirements.txt .ci/install-venv
	@PYTHON="$(PYTHON)" VENV="$(VENV)" sh .ci/install-venv
	@touch $@

venv: $(STAMP) ## Create or update the venv for PYTHON

lab: $(STAMP) ## Open JupyterLab (localhost only, token auth) at lesson 00
	@# Token auth is JupyterLab's default: it generates one and prints the URL holding it.
	$(BIN)/jupyter lab --ip=127.0.0.1 --port=$(PORT) --ServerApp.port_retries=20 $(ROOT_FLAG) \
		notebooks/00_your_notebook_is_an_event_loop.ipynb

test: $(STAMP) ## Run the unit tests and strict nbval over the notebooks (LESSONS=.. to pick)
	@$(BIN)/python -c 'import django, platform; print(f"== Python {platform.python_version()}, Django {django.get_version()} ($(VENV))")'
	TUTORIAL_NOTEBOOKS="$(NOTEBOOKS)" $(BIN)/python -m pytest -q -p no:cacheprovider -n $(JOBS) tests --ignore=tests/e2e --dist loadfile $(NBVAL) $(NOTEBOOKS)

save: $(STAMP) ## Re-run notebooks top to bottom and save their outputs (LESSONS=.. to pick)
	$(BIN)/python .ci/save_notebooks.py $(NOTEBOOKS)

lint: $(STAMP) ## ruff over the project, the tests and the notebooks
	$(BIN)/ruff check tutorial_project tests notebooks .ci .book

bench: $(STAMP) ## Measure setup, bring-up and per-notebook times, and the lessons' ratios
	$(BIN)/python -m tutorial_project.course.benchmarks $(NOTEBOOKS)

postgres: ## Start a local PostgreSQL on 127.0.0.1 (installs it with apt-get as root) for tests/test_postgres.py
	@url=$$(sh .ci/postgres-up) && echo "PostgreSQL is up. Run:  export DATABASE_URL=$$url"

clean-venv: ## Remove every venv under .venv/
	rm -rf .venv

# --- Workshop kit -------------------------------------------------------------------------
# Generated, ignored by git, and removed by `make reset`: learner copies, the HTML site,
# the browser test's screenshots, and the default database folder. Lessons are never touched.
LEARNER_COPIES := notebooks/learner
SITE := .site
TEST_OUTPUT := .test-output
GENERATED := .data $(LEARNER_COPIES) $(SITE) .book/_build $(TEST_OUTPUT) notebooks/.ipynb_checkpoints

exercises: $(STAMP) ## Write learner copies (solutions stubbed) to notebooks/learner/ (FORCE=1 overwrites)
	$(BIN)/python -m tutorial_project.course.learner_copies $(if $(FORCE),--force) $(NOTEBOOKS)

# No venv needed: with a bare interpreter the doctor says how to make one.
doctor: ## Preflight for attendees: versions, packages, kernel, ports, disk (exit 1 if blocked)
	@if [ -x $(BIN)/python ]; then PORT=$(PORT) $(BIN)/python -m tutorial_project.course.doctor; \
	else PORT=$(PORT) $(PYTHON) tutorial_project/course/doctor.py; fi

reset: ## Remove learner databases and generated copies (lessons are left as they are)
	rm -rf $(GENERATED)
	@echo "Clean. Your edits to notebooks/NN_*.ipynb are kept; git checkout notebooks/ restores them."

# The maintainers' tools (the book site's Sphinx toolchain) go into the same venv, installed
# once per change of .ci/requirements-maintainer.txt, so a built venv builds the site offline.
MAINTAINER_STAMP := $(VENV)/.maintainer-installed
$(MAINTAINER_STAMP): $(STAMP) .ci/requirements-maintainer.txt
	@if [ -x $(BIN)/uv ]; then $(BIN)/uv pip install --quiet --python $(BIN)/python -r .ci/requirements-maintainer.txt; \
	else $(BIN)/python -m pip install --quiet --disable-pip-version-check -r .ci/requirements-maintainer.txt; fi
	@touch $@

html: $(MAINTAINER_STAMP) ## Build the course as a book site with its stored outputs in .site/ (open .site/index.html)
	$(BIN)/python -m tutorial_project.course.book --to $(SITE) $(NOTEBOOKS)

e2e: $(MAINTAINER_STAMP) ## Browser tests in headless Chromium: the lessons in JupyterLab, the book site (screenshots in .test-output/)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e -rs
