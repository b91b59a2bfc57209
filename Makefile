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

.PHONY: install install-base install-runners install-browser demo test test-fast test-slow bench catalog clean

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
	@$(BIN)/python -c "from capprof.runners.assets import assets_notice; print(assets_notice())"
	touch $(VENV)/.stamp-base $@

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

bench: install-runners
	$(BIN)/python bench/run_all.py

catalog: install-runners
	$(BIN)/capprof catalog --regenerate

clean:
	rm -rf $(VENV) build *.egg-info
