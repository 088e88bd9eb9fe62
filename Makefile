# favor — two commands for a fresh machine: `make demo` and `make test`.
# Every target runs `setup` first; setup is idempotent (a stamp records the
# installed lock, apt packages are installed only when missing).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
FAVOR := $(VENV)/bin/favor
STAMP := $(VENV)/.favor-setup-stamp
APT_PACKAGES := ffmpeg espeak-ng chromium
APT_BINARIES := ffmpeg ffprobe espeak-ng chromium
DEMO_DIR ?= .favor/demo
PYTEST_FLAGS ?=
# pip warns about every configured-but-absent local index; those lines say nothing about this project.
PIP_NOISE := is ignored: it is neither a file nor a directory

.PHONY: setup demo test test-all bench lock clean-demo dagster docs eval reliability-doc

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@missing=""; for b in $(APT_BINARIES); do command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing apt packages ($(APT_PACKAGES)): missing$$missing"; \
	  sudo_cmd=""; [ "$$(id -u)" = 0 ] || sudo_cmd="sudo"; \
	  $$sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo_cmd apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@test -x $(PY) || python3.11 -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)
	@echo "setup: installing torch==2.13.0 (CPU build) first, then the locked set"
	$(PIP) install -q --disable-pip-version-check torch==2.13.0 2>&1 | grep -v "$(PIP_NOISE)"; test $${PIPESTATUS[0]} -eq 0
	$(PIP) install -q --disable-pip-version-check -r requirements.lock 2>&1 | grep -v "$(PIP_NOISE)"; test $${PIPESTATUS[0]} -eq 0
	$(PIP) install -q --disable-pip-version-check --no-deps -e . 2>&1 | grep -v "$(PIP_NOISE)"; test $${PIPESTATUS[0]} -eq 0
	@touch $(STAMP)

demo: setup
	$(FAVOR) demo --workdir $(DEMO_DIR)

# The fast suite; `slow` tests run in test-all. pytest exit 5 (nothing collected) is a failure.
test: setup
	$(PY) -m pytest -m "not slow" -q $(PYTEST_FLAGS)

test-all: setup
	$(PY) -m pytest -q $(PYTEST_FLAGS)

bench: setup
	$(FAVOR) bench decode
	$(FAVOR) bench model --preset demo
	$(FAVOR) bench qa --preset demo
	$(FAVOR) bench index --preset demo --videos 50
	$(FAVOR) bench search --windows 100000

# docs/cli.md from the parser (a test compares them).
docs: setup
	$(PY) -m pipelines.cli.cli_reference > docs/cli.md

# docs/reliability.md: what the index job makes of each bad input (tests/reliability/cases.py), observed.
reliability-doc: setup
	$(PY) -m tests.reliability.write_reliability_doc

# AVEB-lite on a held-out corpus with the demo checkpoint (run `make demo` first); EVAL_ARGS=--ablations adds the
# ablation study (slow).
EVAL_DIR ?= .favor/eval
EVAL_ARGS ?=
# The eval corpus is indexed (with the demo's ASR) and the stored windows are scored, so transcript WER is measured.
eval: setup
	$(FAVOR) corpus synth $(EVAL_DIR)/corpus --videos 24 --seed 2002 --max-duration 30
	$(FAVOR) index $(EVAL_DIR)/corpus --db $(EVAL_DIR)/db --model .favor/models/demo --asr whisper-tiny-en
	$(FAVOR) eval --corpus $(EVAL_DIR)/corpus --model .favor/models/demo --db $(EVAL_DIR)/db --out $(EVAL_DIR)/report $(EVAL_ARGS)

# Regenerate the lock from the current environment (after changing pyproject.toml).
lock:
	$(PIP) freeze --exclude-editable --disable-pip-version-check | sed -e 's/^torch==2.13.0+cpu$$/torch==2.13.0/' > requirements.lock

clean-demo:
	rm -rf $(DEMO_DIR)

# The Dagster UI on 127.0.0.1:3000 with the repo's dagster.yaml (queued runs, GPU-tagged runs one at a time).
dagster: setup
	export DAGSTER_HOME=$$PWD/.favor/dagster && mkdir -p $$DAGSTER_HOME && cp dagster.yaml $$DAGSTER_HOME/ && \
	  $(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000
