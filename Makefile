# kplab: two set-up commands for a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEBS    := iproute2 iptables nftables conntrack tcpdump ethtool tshark chromium
# Debian tools the lab and the real-kernel tests need (and the headless browser the sweep report's
# test renders the page in); installed as root when one is missing.
TOOLS   := ip iptables iptables-save iptables-restore nft conntrack tcpdump ethtool tshark chromium
APT     := apt-get -o DPkg::Lock::Timeout=900

.PHONY: demo test lint typecheck pytest orders bench bench-debs debs build clean

# The venv and an editable install of kplab (pure: compiling is the separate, incremental step below).
$(STAMP): pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 'setuptools>=77' wheel
	KPLAB_PURE=1 $(BIN)/pip install -q --no-build-isolation -e '.[dev]'
	touch $(STAMP)

# The hot modules (kplab._native.HOT), compiled with mypyc next to their sources. The stamp depends on
# their sources, so an edit is recompiled by the next make (mypyc and build_ext redo only what changed);
# at run time kplab also checks the compiled modules against the sources (kplab/_native.py).
# KPLAB_PURE=1 make ... removes them and runs pure Python.
HOT_PY  := $(shell sed -n 's/^    "\(kplab\.[a-z_.]*\)",$$/\1/p' src/kplab/_native.py | tr . / | sed 's|^|src/|;s|$$|.py|')
ifneq ($(filter-out 0,$(KPLAB_PURE)),)
BUILD   := $(VENV)/.build-pure
$(BUILD): $(STAMP)
	@rm -f $(VENV)/.build-compiled
	find src -name '*.so' -delete
	@echo "kplab: KPLAB_PURE is set: pure Python"
	touch $@
else
BUILD   := $(VENV)/.build-compiled
# mypyc's incremental build keeps its own cache under build/ (not the type check's .mypy_cache). It can
# crash on some edits of native classes (seen: a class's attributes changing between two builds); the
# build then starts again from nothing rather than leave an old module or fail.
$(BUILD): $(STAMP) setup.py src/kplab/_native.py $(HOT_PY)
	@rm -f $(VENV)/.build-pure
	MYPY_CACHE_DIR=build/mypyc-cache $(BIN)/python setup.py -q build_ext --inplace -j 2 \
	  || { echo "kplab: the incremental compile failed; compiling from scratch"; rm -rf build; \
	       MYPY_CACHE_DIR=build/mypyc-cache $(BIN)/python setup.py -q build_ext --inplace -j 2; }
	touch $@
endif

build: $(BUILD)

debs:
	@missing=""; for t in $(TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages for:$$missing"; \
	    $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq $(DEBS) >/dev/null; \
	  else echo "note: missing$$missing (run as root to install them; the kernel tests need them)"; fi; \
	fi

demo: $(BUILD)
	$(BIN)/kplab demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench setup.py
	$(BIN)/ruff format --check src tests bench setup.py
	$(BIN)/lint-imports --no-logo

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(BUILD) debs
	$(BIN)/pytest -n 2 -q

test: lint typecheck pytest

# The suite in other distributions and orders: no test may depend on which others share its worker
# or ran before it (a session-scoped lab lives on its worker across tests).
orders: $(BUILD) debs
	$(BIN)/pytest -n 2 --dist loadfile -q
	$(BIN)/pytest -p no:xdist -q
	$(BIN)/pytest -p no:xdist --reverse -q

# ns-3 for the emulator-vs-ns-3 benchmark (bench/ns3.py builds bench/ns3/cluster.cc against it)
bench-debs:
	@if ! dpkg -s libns3-dev >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing libns3-dev for the ns-3 benchmark"; \
	    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq libns3-dev >/dev/null \
	    || { apt-get -o DPkg::Lock::Timeout=900 update -qq && DEBIAN_FRONTEND=noninteractive \
	         apt-get -o DPkg::Lock::Timeout=900 install -y -qq libns3-dev >/dev/null; }; \
	  else echo "note: libns3-dev is missing (run make bench as root to install it)"; fi; \
	fi

bench: $(BUILD) debs bench-debs
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .import_linter_cache build src/kplab/_built.py
	find src -name '*.so' -delete
