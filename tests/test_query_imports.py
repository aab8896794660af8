"""Query time loads none of the build pipeline: no document loaders, chunker or boilerplate
rules, and none of the libraries that read HTML, PDF or Word files.

Each check runs in a fresh interpreter (this test process has imported everything) and
reads that interpreter's ``sys.modules`` after it has answered questions, or printed help.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from indexer.settings import Settings
from support import REPO_ROOT, FakeIndex, subprocess_env

# What the build pipeline imports, and query time must not.
BUILD_TIME = ("indexer.loaders", "indexer.chunking", "indexer.documents", "indexer.boilerplate",
              "trafilatura", "pypdf", "docx", "lxml.html")

# Runs in the child: appends to sys.path the tests folder (for support.FakeEmbedder) and
# ends by printing, as the last line of stderr, which BUILD_TIME modules it holds.
PRELUDE = f"""
import json, sys
sys.path.insert(0, {str(REPO_ROOT / "tests")!r})
BUILD_TIME = {BUILD_TIME!r}
def report(**extra):
    extra["loaded"] = sorted(m for m in BUILD_TIME if m in sys.modules)
    print(json.dumps(extra), file=sys.stderr)
"""


def _child(code: str, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
    proc = subprocess.run([sys.executable, "-c", PRELUDE + code, *args], cwd=REPO_ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.stderr.strip(), f"the child reported nothing (exit {proc.returncode})"
    try:
        report = json.loads(proc.stderr.strip().splitlines()[-1])
    except json.JSONDecodeError:
        raise AssertionError(f"the child failed (exit {proc.returncode}):\n{proc.stderr}") from None
    return proc, report


ASK_AND_COMPARE = """
from dataclasses import replace
from pathlib import Path

import retrieval, retrieval.searcher, retrieval.compare, retrieval.export, retrieval.highlight
import retrieval.__main__  # the command line's own imports (main() is not run)
from indexer.settings import Settings
from indexer.stores.local import LocalStore
from retrieval.compare import compare
from retrieval.export import result_markdown
from retrieval.searcher import Searcher
from support import FAKE_CHUNKING, FakeEmbedder

settings = Settings(index_dir=Path(sys.argv[1]), model_path=None, model_name=FakeEmbedder().name,
                    chunking=FAKE_CHUNKING)
searcher = Searcher(LocalStore(settings.index_dir), FakeEmbedder(), settings)
result = searcher.ask("Where do emperor penguins breed?")
result_markdown(result)
comparison = compare(searcher, "Who won the Zurich chess tournament?")
rule = Searcher.load(replace(settings, verdict="rule"), FakeEmbedder())  # the hand rule, via open_store
ruled = rule.ask("Which town did the lava flow toward in Iceland?")
report(top=result.hits[0].doc_id, passage=result.hits[0].passage_id, articles=len(comparison.articles),
       rule_top=ruled.hits[0].doc_id, learned=searcher.models is not None)
"""


def test_asking_and_comparing_load_no_build_code(fake_index: FakeIndex) -> None:
    proc, report = _child(ASK_AND_COMPARE, str(fake_index.settings.index_dir))
    assert proc.returncode == 0, proc.stderr
    # It really answered (from the store, with the learned models and with the hand rule).
    assert report["top"] == "penguins" and report["passage"].startswith("penguins@")
    assert report["articles"] == len(fake_index.documents)
    assert report["rule_top"] == "volcano" and report["learned"] is True
    assert report["loaded"] == [], f"query time imported build-time modules: {report['loaded']}"


def test_the_check_sees_a_build_time_import() -> None:
    """The same check on the update pipeline, which does load the document loaders: it
    reports them (so an empty report above means something)."""
    proc, report = _child("import indexer.update\nreport()")
    assert proc.returncode == 0, proc.stderr
    assert {"indexer.loaders", "indexer.chunking", "indexer.documents"} <= set(report["loaded"])


# `python -m retrieval ...` in the child, as the shell runs it (runpy), then the report.
RUN_CLI = """
import runpy
sys.argv = ["python -m retrieval", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("retrieval", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
report(code=code)
"""


@pytest.mark.parametrize("command", ["ask", "compare"])
def test_cli_help_loads_no_build_code(command: str) -> None:
    proc, report = _child(RUN_CLI, command, "--help")
    assert report["code"] == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m retrieval {command}")
    assert report["loaded"] == [], f"`python -m retrieval {command} --help` imported {report['loaded']}"


@pytest.mark.slow
def test_cli_ask_with_the_real_model_loads_no_build_code(seeds_index: Settings) -> None:
    proc, report = _child(RUN_CLI, "ask", "--json", "--top-k", "2", "--index", str(seeds_index.index_dir),
                          "When did Turkey join NATO?")
    assert report["code"] == 0, proc.stderr
    (answer,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert answer["hits"][0]["doc_id"] == "004_6a67110f8947381e" and len(answer["hits"]) == 2
    assert report["loaded"] == [], f"`python -m retrieval ask` imported {report['loaded']}"
