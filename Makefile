# Verbatim: `make run` sets up and starts the app on the seeds; `make test` sets up and
# runs the whole test suite. Both are idempotent and quick once set up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
INDEX  ?= index
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup setup-dev index run test bench eval clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# The ONNX exports of the packaged model (idempotent; redone when the recipe changes): the
# default backend (`auto`) runs the int8 one, else the float32 one; without either it falls
# back to PyTorch (slower), so a failed export only warns (and the next make retries).
$(VENV)/.onnx-exported: $(VENV)/.installed indexer/onnx_backend.py
	$(PY) -m indexer.onnx_backend export --quiet && touch $@ \
		|| echo "warning: ONNX export failed; Verbatim will run the model with PyTorch (slower)" >&2

$(VENV)/.installed-dev: $(VENV)/.onnx-exported requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(VENV)/.onnx-exported

# The browser tests (tests/browser) drive Debian's Chromium at /usr/bin/chromium; installed
# only when missing. If it cannot be installed, make goes on and those tests fail saying so.
setup-dev: $(VENV)/.installed-dev
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "warning: could not install Debian's chromium; the browser tests will fail." >&2

# Adds new or changed seed articles (building the index when there is none); articles
# added later through the app or `indexer add` stay.
index: setup
	$(PY) -m indexer add seeds --index $(INDEX)

run: index
	VERBATIM_INDEX_DIR=$(INDEX) $(PY) -m streamlit run app.py

test: setup-dev
	$(PY) -m pytest

bench: setup
	$(PY) -m bench

eval: setup
	$(PY) -m bench.eval --suite seeds

clean:
	rm -rf $(VENV) $(INDEX) .pytest_cache .hypothesis
