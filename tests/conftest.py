"""Shared fixtures: a deterministic fake embedder, the real model (loaded once), and indexes.

Tests that need the real model or start processes are marked ``slow``; everything else runs
on :class:`FakeEmbedder`, a hashed bag of words, so that texts sharing words are similar.
"""

from __future__ import annotations

import os

# Never reach a model hub, whatever the caller's environment says.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `pytest` run without `python -m`
    sys.path.insert(0, str(REPO_ROOT))

from indexer.build import build_index  # noqa: E402
from indexer.documents import load_documents  # noqa: E402
from indexer.settings import Settings  # noqa: E402
from support import (  # noqa: E402
    FAKE_CHUNKING, INJECTED_ARTICLE, SYNTHETIC_ARTICLES, FakeEmbedder, FakeIndex, in_repo_root, write_articles,
)

# No example database under the repository (every write goes under tmp_path), and no
# deadline (timings on a loaded 2-core machine vary).
hypothesis_settings.register_profile("verbatim", database=None, deadline=None)
hypothesis_settings.load_profile("verbatim")

@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def make_fake_embedder() -> Callable[..., FakeEmbedder]:
    """Factory for fake embedders with another name or dimension."""
    return FakeEmbedder


@pytest.fixture
def fake_index(tmp_path: Path) -> FakeIndex:
    """A fake-embedder index of SYNTHETIC_ARTICLES under tmp_path (built per test)."""
    folder = write_articles(tmp_path / "articles", SYNTHETIC_ARTICLES)
    docs, skipped = load_documents([folder])
    assert not skipped and len(docs) == len(SYNTHETIC_ARTICLES)
    embedder = FakeEmbedder()
    settings = Settings(index_dir=tmp_path / "index", model_path=None, model_name=embedder.name,
                        chunking=FAKE_CHUNKING)
    build_index(docs, settings, embedder)
    return FakeIndex(settings, embedder, tuple(docs), folder)


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    """The packaged all-MiniLM-L6-v2 model, loaded once per test run."""
    from indexer.embedding import load_embedder

    base = Settings()
    return load_embedder(base.model_path, base.model_name)


@pytest.fixture(scope="session")
def seeds_index(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> Settings:  # type: ignore[no-untyped-def]
    """The real-model index of seeds/, built once per run under tmp; returns its Settings.

    Documents are read with the repository root as working directory, so their sources are
    ``seeds/<file>.txt`` as with ``make index``.
    """
    settings = Settings(index_dir=tmp_path_factory.mktemp("seeds_index"))
    with in_repo_root():
        docs, skipped = load_documents(["seeds"])
    assert not skipped, skipped
    expected = [f"seeds/{p.name}" for p in sorted((REPO_ROOT / "seeds").glob("*.txt"))]
    assert [d.source for d in docs] == expected
    build_index(docs, settings, real_embedder)
    return settings


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> Settings:  # type: ignore[no-untyped-def]
    """The seeds plus an article carrying a prompt injection (support.INJECTED_ARTICLE),
    indexed with the real model once per run (the written-answer tests)."""
    folder = tmp_path_factory.mktemp("injected")
    (folder / "injected.txt").write_text(INJECTED_ARTICLE, encoding="utf-8")
    settings = Settings(index_dir=folder / "index")
    with in_repo_root():
        docs, skipped = load_documents(["seeds", str(folder / "injected.txt")])
    assert not skipped
    build_index(docs, settings, real_embedder)
    return settings
