# The two commands: `make demo` runs the main job on the example registry,
# `make test` runs the whole test suite. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/funnelcheck validate
	$(BIN)/funnelcheck resolve "e.signup.visited(pricing).context(channel='google',device='mobile').p.mean" --explain
	$(BIN)/funnelcheck whatif saas-signup

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .funnelcheck
