"""Which embedding backend runs (VERBATIM_BACKEND, ``auto``), and which vectors an index may mix.

Fast: no model is loaded. ``indexer.onnx_backend.default_onnx_dir`` is pointed at folders
under tmp holding a dummy export (export.json, a dummy model file and tokenizer.json), so
nothing here depends on what ``make setup`` exported.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import indexer.embedding as embedding
import indexer.onnx_backend as onnx_backend
from indexer.build import build_index, reusable, vector_kind
from indexer.embedding import load_embedder, resolve_backend
from indexer.errors import ConfigError, ModelNotFoundError
from indexer.onnx_backend import EXPORT_COMMAND, MANIFEST, TOKENIZER_FILE, export_present
from indexer.settings import BACKENDS, Settings
from indexer.stores.local import LocalStore
from indexer.types import Document
from indexer.update import LazyEmbedder, remove_documents
from support import FAKE_CHUNKING, FakeEmbedder

# --------------------------------------------------------------------------- settings


def test_default_backend_is_auto() -> None:
    assert Settings().backend == "auto"
    assert Settings.from_env({}).backend == "auto"
    assert Settings.from_env({"VERBATIM_BACKEND": ""}).backend == "auto"


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_listed_backend_is_accepted(backend: str) -> None:
    assert Settings.from_env({"VERBATIM_BACKEND": backend}).backend == backend
    # Case and surrounding blanks do not matter in the environment variable.
    assert Settings.from_env({"VERBATIM_BACKEND": f"  {backend.upper()} "}).backend == backend


def test_backends_are_the_documented_ones() -> None:
    assert set(BACKENDS) == {"auto", "onnx", "onnx-int8", "torch"}


@pytest.mark.parametrize("bad", ["gpu", "onnx-fp32", "int8"])
def test_an_unknown_backend_is_rejected_naming_the_valid_ones(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"VERBATIM_BACKEND": bad})
    message = str(info.value)
    assert "VERBATIM_BACKEND" in message and repr(bad) in message
    for valid in BACKENDS:
        assert valid in message
    with pytest.raises(ConfigError):
        Settings(backend=bad)


# --------------------------------------------------------------------------- auto


def write_export(folder: Path, source: Path, *, quantize: bool = False) -> Path:
    """A dummy export in ``folder`` made "from" ``source``: enough for ``export_present``."""
    folder.mkdir(parents=True, exist_ok=True)
    model_file = "model_int8.onnx" if quantize else "model_fp32.onnx"
    (folder / model_file).write_bytes(b"not really onnx")
    (folder / TOKENIZER_FILE).write_text("{}", encoding="utf-8")
    manifest = {"format": 1, "name": "all-MiniLM-L6-v2", "model_file": model_file,
                "backend": "onnx-int8" if quantize else "onnx-fp32", "dimension": 384,
                "source": {"path": str(source.resolve()), "files": {}}}
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return folder


@pytest.fixture
def export_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[bool, Path]:
    """``default_onnx_dir(quantize)`` -> tmp folders (not created) for the duration of a test."""
    dirs = {False: tmp_path / "onnx-fp32", True: tmp_path / "onnx-int8"}
    monkeypatch.setattr(onnx_backend, "default_onnx_dir", lambda quantize=True: dirs[bool(quantize)])
    # As on a CPU whose int8 kernels are exact (the choice below depends on it otherwise).
    monkeypatch.setattr(embedding, "int8_is_exact", lambda: True)
    return dirs


def test_auto_passes_over_int8_where_this_cpu_runs_it_inexactly(export_dirs: dict[bool, Path], model_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write_export(export_dirs[True], model_dir, quantize=True)
    write_export(export_dirs[False], model_dir)
    assert resolve_backend("auto", model_dir) == "onnx-int8"
    monkeypatch.setattr(embedding, "int8_is_exact", lambda: False)
    assert resolve_backend("auto", model_dir) == "onnx"
    assert resolve_backend("onnx-int8", model_dir) == "onnx-int8"  # asked for by name: kept


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models" / "mini"
    folder.mkdir(parents=True)
    return folder


def test_auto_without_an_export_is_torch(export_dirs: dict[bool, Path], model_dir: Path) -> None:
    assert resolve_backend("auto", model_dir) == "torch"
    assert resolve_backend("auto", None) == "torch"


def test_auto_with_an_export_of_the_model_is_onnx(export_dirs: dict[bool, Path], model_dir: Path) -> None:
    write_export(export_dirs[False], model_dir)
    assert export_present(export_dirs[False])
    assert resolve_backend("auto", model_dir) == "onnx"
    # The same folder spelled another way.
    assert resolve_backend("auto", model_dir / ".." / model_dir.name) == "onnx"
    assert resolve_backend("auto", None) == "torch"  # no model folder to compare with


def test_auto_with_an_export_of_another_model_is_torch(export_dirs: dict[bool, Path], model_dir: Path,
                                                       tmp_path: Path) -> None:
    other = tmp_path / "models" / "other"
    other.mkdir()
    write_export(export_dirs[False], other)
    assert export_present(export_dirs[False])
    assert resolve_backend("auto", model_dir) == "torch"


def test_auto_prefers_the_int8_export(export_dirs: dict[bool, Path], model_dir: Path,
                                      tmp_path: Path) -> None:
    write_export(export_dirs[True], model_dir, quantize=True)
    assert resolve_backend("auto", model_dir) == "onnx-int8"
    write_export(export_dirs[False], model_dir)
    assert resolve_backend("auto", model_dir) == "onnx-int8"  # both: int8
    other = tmp_path / "models" / "other"
    other.mkdir()
    write_export(export_dirs[True], other, quantize=True)  # int8 of another model: float32
    assert resolve_backend("auto", model_dir) == "onnx"


def test_auto_ignores_an_incomplete_export(export_dirs: dict[bool, Path], model_dir: Path) -> None:
    folder = write_export(export_dirs[False], model_dir)
    (folder / TOKENIZER_FILE).unlink()
    assert not export_present(folder)
    assert resolve_backend("auto", model_dir) == "torch"
    write_export(folder, model_dir)
    (folder / "model_fp32.onnx").unlink()
    assert not export_present(folder)
    assert resolve_backend("auto", model_dir) == "torch"
    (folder / MANIFEST).write_text("{not json", encoding="utf-8")
    assert not export_present(folder)
    assert resolve_backend("auto", model_dir) == "torch"


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8", "torch"])
def test_explicit_backends_pass_through(export_dirs: dict[bool, Path], model_dir: Path, backend: str) -> None:
    assert resolve_backend(backend, model_dir) == backend  # no export at all
    write_export(export_dirs[False], model_dir)
    write_export(export_dirs[True], model_dir, quantize=True)
    assert resolve_backend(backend, model_dir) == backend
    assert resolve_backend(backend, None) == backend


@pytest.mark.parametrize(("backend", "quantize"), [("onnx", False), ("onnx-int8", True)])
def test_an_export_of_another_model_is_not_loaded(export_dirs: dict[bool, Path], model_dir: Path,
                                                  tmp_path: Path, backend: str, quantize: bool) -> None:
    other = tmp_path / "models" / "other"
    other.mkdir()
    write_export(export_dirs[quantize], other, quantize=quantize)
    with pytest.raises(ModelNotFoundError) as info:
        load_embedder(model_dir, "mini", backend)
    message = str(info.value)
    assert EXPORT_COMMAND in message
    assert "VERBATIM_BACKEND=torch" in message
    assert str(other.resolve()) in message and str(model_dir) in message


def test_a_missing_export_says_what_to_run(export_dirs: dict[bool, Path], model_dir: Path) -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(ModelNotFoundError, match=EXPORT_COMMAND):
        load_embedder(model_dir, "mini", "onnx")


# --------------------------------------------------------------------------- mixing vectors


def test_vector_kinds() -> None:
    assert vector_kind("torch") == vector_kind("onnx-fp32") == vector_kind("onnx")
    assert vector_kind("onnx-int8") != vector_kind("torch")
    assert vector_kind("onnx-int8") != vector_kind("onnx-fp32")


class BackendEmbedder(FakeEmbedder):
    """A fake embedder that says which backend it is and counts the texts it embeds."""

    def __init__(self, backend: str | None) -> None:
        super().__init__()
        if backend is not None:
            self.backend = backend
        self.texts = 0

    def encode(self, texts, *, batch_size=32, show_progress=False):  # type: ignore[no-untyped-def]
        self.texts += len(texts)
        return super().encode(texts, batch_size=batch_size, show_progress=show_progress)


TOPICS = {
    "a": "Penguins breed on the sea ice. The males keep the eggs warm for two months.",
    "b": "A volcano erupted in Iceland on Monday. Lava flowed toward the town of Grindavik.",
    "c": "The central bank raised interest rates. Inflation stayed above the target all year.",
}


def doc(doc_id: str) -> Document:
    body = f"Title {doc_id}\n\n{TOPICS[doc_id]}"
    return Document(doc_id=doc_id, title=f"Title {doc_id}", source=f"{doc_id}.txt", text=body,
                    sha256=hashlib.sha256(body.encode()).hexdigest())


def fake_settings(folder: Path) -> Settings:
    return replace(Settings(), index_dir=folder, model_path=None, model_name=FakeEmbedder().name,
                   chunking=FAKE_CHUNKING)


def all_vectors(folder: Path) -> dict[str, np.ndarray]:
    """Every stored passage and sentence vector of the index at ``folder``, by id."""
    out = {}
    for stored in LocalStore(folder).stored_documents():
        out.update({p.passage_id: np.asarray(p.vector) for p in stored.passages})
        out.update({s.sentence_id: np.asarray(s.vector) for s in stored.sentences})
    return out


def build_with(backend: str | None, folder: Path) -> BackendEmbedder:
    embedder = BackendEmbedder(backend)
    build_index([doc(k) for k in sorted(TOPICS)], fake_settings(folder), embedder)
    assert embedder.texts > 0
    return embedder


# (old index's backend, new embedder's backend, whether the old vectors are reused)
MIXES = [
    ("onnx-fp32", "torch", True),
    ("torch", "onnx-fp32", True),
    (None, "onnx-fp32", True),  # an embedder without the attribute, or an older manifest: torch
    ("torch", "torch", True),
    ("onnx-int8", "onnx-int8", True),
    ("onnx-int8", "torch", False),
    ("onnx-int8", "onnx-fp32", False),
    ("torch", "onnx-int8", False),
    ("onnx-fp32", "onnx-int8", False),
]


@pytest.mark.parametrize(("old", "new", "reused"), MIXES)
def test_vectors_are_reused_only_from_the_same_kind(tmp_path: Path, old: str | None, new: str,
                                                    reused: bool) -> None:
    folder = tmp_path / "index"
    first = build_with(old, folder)
    previous = LocalStore(folder)
    assert previous.info.model.backend == (old or "torch")
    assert reusable(previous, BackendEmbedder(new)) is reused

    embedder = BackendEmbedder(new)
    result = build_index([doc(k) for k in sorted(TOPICS)], fake_settings(folder), embedder, previous=previous)
    if reused:
        assert embedder.texts == 0
        assert result.reused_documents == tuple(sorted(TOPICS))
        assert result.embedded_chunks == 0 and result.embedded_sentences == 0
    else:
        assert embedder.texts == first.texts  # everything embedded again
        assert result.reused_documents == ()
        assert result.embedded_chunks == result.chunks and result.embedded_sentences == result.sentences
    assert LocalStore(folder).info.model.backend == new
    # Reused or embedded again, the index holds what a fresh build with the new backend holds.
    fresh = tmp_path / "fresh"
    build_index([doc(k) for k in sorted(TOPICS)], fake_settings(fresh), BackendEmbedder(new))
    got, want = all_vectors(folder), all_vectors(fresh)
    assert got.keys() == want.keys() and got
    for item_id, vector in want.items():
        np.testing.assert_allclose(got[item_id], vector, atol=1e-6)


def test_a_changed_document_is_embedded_with_the_new_backend_only(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    build_with("onnx-fp32", folder)
    previous = LocalStore(folder)
    changed = replace(doc("b"), text=doc("b").text + " Flights were not affected.",
                      sha256="0" * 64)
    embedder = BackendEmbedder("torch")
    result = build_index([doc("a"), changed, doc("c")], fake_settings(folder), embedder, previous=previous)
    assert result.reused_documents == ("a", "c")
    assert 0 < embedder.texts == result.embedded_chunks + result.embedded_sentences
    fresh = tmp_path / "fresh"
    build_index([doc("a"), changed, doc("c")], fake_settings(fresh), BackendEmbedder("torch"))
    got, want = all_vectors(folder), all_vectors(fresh)
    assert got.keys() == want.keys() and any(":s" in i for i in got) and any(":p" in i for i in got)
    for item_id, vector in want.items():
        np.testing.assert_allclose(got[item_id], vector, atol=1e-6)


@pytest.mark.parametrize("configured", ["onnx-int8", "onnx-fp32", "torch"])
def test_removal_from_an_int8_index_never_loads_the_model(tmp_path: Path, configured: str) -> None:
    """`indexer remove` (or a removal in the app) embeds nothing, so it reuses every vector
    and keeps the manifest's backend whatever backend is configured now."""
    folder = tmp_path / "index"
    build_with("onnx-int8", folder)

    def explode() -> BackendEmbedder:
        raise AssertionError("the model was loaded")

    lazy = LazyEmbedder(FakeEmbedder().name, FakeEmbedder().dimension, explode, backend=configured)
    remove_documents(["a"], fake_settings(folder), lazy)
    store = LocalStore(folder)
    assert store.info.model.backend == "onnx-int8"
    assert [d.doc_id for d in store.document_infos()] == sorted(set(TOPICS) - {"a"})


def test_the_cli_lazy_embedder_carries_the_configured_backend(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.__main__ import _lazy_embedder

    folder = tmp_path / "index"
    build_with("onnx-int8", folder)
    for backend, label in (("onnx-int8", "onnx-int8"), ("torch", "torch")):
        settings = replace(fake_settings(folder), backend=backend, model_name=FakeEmbedder().name)
        lazy = _lazy_embedder(settings, LocalStore(folder))
        assert isinstance(lazy, LazyEmbedder) and lazy.backend == label


def test_auto_falls_back_to_torch_when_the_model_files_changed_since_the_export(
        export_dirs: dict[bool, Path], model_dir: Path) -> None:
    (model_dir / "config.json").write_text("{}", encoding="utf-8")
    folder = write_export(export_dirs[False], model_dir)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    manifest["source"]["stat"] = onnx_backend.source_stat(model_dir)
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert resolve_backend("auto", model_dir) == "onnx"
    (model_dir / "config.json").write_text('{"changed": true}', encoding="utf-8")
    assert resolve_backend("auto", model_dir) == "torch"
    with pytest.raises(ModelNotFoundError, match="export it again"):
        load_embedder(model_dir, "all-MiniLM-L6-v2", "onnx")


def test_auto_falls_back_to_torch_when_onnxruntime_cannot_load_the_export(
        export_dirs: dict[bool, Path], model_dir: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import indexer.embedding as embedding

    write_export(export_dirs[False], model_dir)  # "not really onnx": onnxruntime refuses it
    loaded: list[Path] = []

    class Torch:
        def __init__(self, path: Path, name: str) -> None:
            loaded.append(path)

    monkeypatch.setattr(embedding, "SentenceTransformerEmbedder", Torch)
    assert isinstance(load_embedder(model_dir, "all-MiniLM-L6-v2", "auto"), Torch)
    assert loaded == [model_dir] and "VERBATIM_BACKEND=torch instead" in caplog.text
    with pytest.raises(ModelNotFoundError):  # asked for explicitly: an error, not a fallback
        load_embedder(model_dir, "all-MiniLM-L6-v2", "onnx")


def test_auto_tries_float32_then_torch_when_the_int8_export_cannot_load(
        export_dirs: dict[bool, Path], model_dir: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import indexer.embedding as embedding

    write_export(export_dirs[True], model_dir, quantize=True)  # neither loads in onnxruntime
    write_export(export_dirs[False], model_dir)
    loaded: list[Path] = []

    class Torch:
        def __init__(self, path: Path, name: str) -> None:
            loaded.append(path)

    monkeypatch.setattr(embedding, "SentenceTransformerEmbedder", Torch)
    assert resolve_backend("auto", model_dir) == "onnx-int8"
    assert isinstance(load_embedder(model_dir, "all-MiniLM-L6-v2", "auto"), Torch)
    assert "VERBATIM_BACKEND=onnx instead" in caplog.text
    assert "VERBATIM_BACKEND=torch instead" in caplog.text
