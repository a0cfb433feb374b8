# kplab: two set-up commands for a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEBS    := iproute2 iptables nftables conntrack tcpdump ethtool tshark
# Debian tools the lab and the real-kernel tests need; installed as root when one is missing.
TOOLS   := ip iptables iptables-save iptables-restore nft conntrack tcpdump ethtool tshark

.PHONY: demo test lint typecheck pytest bench debs clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

debs:
	@missing=""; for t in $(TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages for:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null; \
	  else echo "note: missing$$missing (run as root to install them; the kernel tests need them)"; fi; \
	fi

demo: $(STAMP)
	$(BIN)/kplab demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) debs
	$(BIN)/pytest -n 2 -q

test: lint typecheck pytest

bench: $(STAMP) debs
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
