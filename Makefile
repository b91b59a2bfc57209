# capprof: every set-up step lives here, so a fresh clone needs only `make demo`
# or `make test`. Both are idempotent: stamps in .venv/ skip finished installs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

# dm-meltingpot's sdist downloads DeepMind's bot assets while it builds. Offline,
# the build looks for the tarball in $TMPDIR first, so we put one there: the real
# one when MELTINGPOT_ASSETS points at it, otherwise a placeholder holding an
# empty assets/saved_models/ (scenarios that need bots then fail with a clear
# message; everything else works).
MELTINGPOT_ASSETS ?=
ASSETS_NAME := meltingpot-assets-2.3.0.tar.gz
ASSETS_TMP  := $(abspath $(VENV)/.meltingpot-build-tmp)

TORCH_PIN := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install install-base install-runners install-browser demo test test-fast test-slow test-legacy bench catalog clean legacy-env

install: install-runners

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip "setuptools>=77" wheel

install-base: $(VENV)/.stamp-base
$(VENV)/.stamp-base: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev]'
	touch $@

install-runners: $(VENV)/.stamp-runners
$(VENV)/.stamp-runners: pyproject.toml | $(BIN)/python
	@rm -rf $(ASSETS_TMP) && mkdir -p $(ASSETS_TMP)/assets/saved_models
	@if [ -n "$(MELTINGPOT_ASSETS)" ]; then \
	  cp "$(MELTINGPOT_ASSETS)" $(ASSETS_TMP)/$(ASSETS_NAME); \
	  echo "capprof: building dm-meltingpot with the bot assets from $(MELTINGPOT_ASSETS)"; \
	else \
	  tar -C $(ASSETS_TMP) -czf $(ASSETS_TMP)/$(ASSETS_NAME) assets; \
	fi
	# torch first, pinned: the CPU build this machine kind ships (others pull CUDA).
	TMPDIR=$(ASSETS_TMP) $(PIP) install --quiet $(TORCH_PIN)
	@# A wheel cached from a placeholder build would hide real assets: rebuild then.
	@if [ -n "$(MELTINGPOT_ASSETS)" ]; then \
	  TMPDIR=$(ASSETS_TMP) $(PIP) install --quiet --no-cache-dir --force-reinstall --no-deps dm-meltingpot==2.4.1; fi
	TMPDIR=$(ASSETS_TMP) $(PIP) install --quiet -e '.[runners,dev]' $(TORCH_PIN)
	@rm -rf $(ASSETS_TMP)
	@$(BIN)/python -c "from capprof.runners.scenarios.assets import assets_notice; print(assets_notice())"
	touch $(VENV)/.stamp-base $@

# The 2023 contest's stack in its own Python 3.10 venv, for `rllib-legacy:` and
# `submission:` members (docs/runners.md, "Contest-era agents"). Not part of
# `make test`. The stamp records the pins, so a second run is a no-op and a
# change of pins reinstalls. PyPI has no CPU-only torch 2.0.1: the plain wheel
# brings its CUDA libraries (unused on CPU), most of the venv's size.
LEGACY_VENV   := .venv-legacy
LEGACY_PYTHON ?=
LEGACY_PINS   := ray[rllib]==2.6.1 torch==2.0.1 gymnasium==0.26.3 setuptools==69.5.1 numpy==1.26.4 opencv-python-headless==4.8.1.78 dm-env==1.6 dm-tree==0.1.8 pandas==2.0.3 scipy==1.11.4 pydantic==1.10.13

legacy-env:
	@if [ -f $(LEGACY_VENV)/.stamp-legacy ] && [ "$$(cat $(LEGACY_VENV)/.stamp-legacy)" = "$(LEGACY_PINS)" ]; then \
	  echo "capprof: $(LEGACY_VENV) is up to date ($(LEGACY_VENV)/bin/python)"; exit 0; fi; \
	py="$(LEGACY_PYTHON)"; \
	if [ -z "$$py" ]; then \
	  for c in python3.10 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10*/bin/python3.10 2>/dev/null | sort -r); do \
	    if "$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then py="$$c"; break; fi; \
	  done; fi; \
	if [ -z "$$py" ] || ! "$$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then \
	  echo "capprof: make legacy-env needs a Python 3.10 interpreter and found none (no python3.10 on PATH, none under $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10*$${py:+, and $$py is not 3.10}): install one with 'pyenv install 3.10.13' (or apt-get install python3.10), or name it: make legacy-env LEGACY_PYTHON=/path/to/python3.10" >&2; \
	  exit 2; fi; \
	if [ -x $(LEGACY_VENV)/bin/python ] && ! $(LEGACY_VENV)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then rm -rf $(LEGACY_VENV); fi; \
	set -e; start=$$(date +%s); \
	echo "capprof: building $(LEGACY_VENV) with $$py ($$($$py -V 2>&1)): $(LEGACY_PINS)"; \
	[ -x $(LEGACY_VENV)/bin/python ] || "$$py" -m venv $(LEGACY_VENV); \
	$(LEGACY_VENV)/bin/python -m pip install --quiet --upgrade pip==24.0 wheel==0.43.0; \
	$(LEGACY_VENV)/bin/python -m pip install --quiet $(foreach p,$(LEGACY_PINS),"$(p)"); \
	$(LEGACY_VENV)/bin/python -c "import ray, torch, gymnasium, numpy, cv2, dm_env; from ray.rllib.policy.policy import Policy; print('capprof: legacy env ready: ray', ray.__version__, 'torch', torch.__version__, 'gymnasium', gymnasium.__version__, 'numpy', numpy.__version__)"; \
	echo "$(LEGACY_PINS)" > $(LEGACY_VENV)/.stamp-legacy; \
	echo "capprof: $(LEGACY_VENV) built in $$(( $$(date +%s) - start )) s, $$(du -sh $(LEGACY_VENV) | cut -f1)"

demo: install-runners
	$(BIN)/capprof demo

test: install-runners
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-fast: test

# Debian's Chromium, for the report's real-browser test (tests/test_reports_browser.py).
install-browser:
	@[ -x /usr/bin/chromium ] || { apt-get update && apt-get install -y chromium; }

test-slow: install-runners install-browser
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# The tests that play contest-era agents in .venv-legacy, alone (they skip,
# saying so, without it; CI builds it first, so there they run within
# `make test` and `make test-slow`: docs/runners.md, "Contest-era agents in CI").
test-legacy: install-runners legacy-env
	$(BIN)/python -m pytest tests/test_legacy_rllib.py \
	  tests/test_spec_validation.py::test_a_submission_runs_unchanged_in_an_interpreter_without_meltingpot $(PYTEST_ARGS)

bench: install-runners
	$(BIN)/python bench/run_all.py

catalog: install-runners
	$(BIN)/capprof catalog --regenerate

clean:
	rm -rf $(VENV) build *.egg-info
