# The two commands: `make demo` runs the main job on the example registry,
# `make test` runs the whole test suite. Both set up .venv on first use.
# The demo's data is simulated once (git-ignored, under examples/data/): signup for Facebook
# traffic drifts from the registry's 21% to 29%, so monitor shows a red row.
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

DEMO_DATA := examples/data/events.duckdb
DEMO_AS_OF := 2026-11-29

$(DEMO_DATA): | $(STAMP)
	$(BIN)/funnelcheck simulate saas-signup --users 200000 --out $(DEMO_DATA) --start 2026-11-01 --days 28 \
		--seed 1 --drift "e.signup.context(channel='facebook').p.mean=0.29"

demo: $(STAMP) $(DEMO_DATA)
	$(BIN)/funnelcheck validate
	$(BIN)/funnelcheck resolve "e.signup.visited(pricing).context(channel='google',device='mobile').p.mean" --explain
	$(BIN)/funnelcheck whatif saas-signup
	$(BIN)/funnelcheck priors sync
	$(BIN)/funnelcheck monitor --as-of $(DEMO_AS_OF)
	$(BIN)/funnelcheck update --as-of $(DEMO_AS_OF)
	$(BIN)/funnelcheck dashboard --output .funnelcheck/dashboard

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .funnelcheck examples/data
