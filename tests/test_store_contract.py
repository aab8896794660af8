"""The store-facing guarantees, on both stores: the local folder and milvus-lite.

Each guarantee runs once per store kind (``local``, ``milvus-lite``):

- any sequence of builds, adds, updates (same file, new content) and removes answers
  exactly as a fresh build of the final articles in the same kind of store;
- every hit's offsets slice its article's stored text, the answer lies inside the hit, and
  the passage id names the hit's document and span;
- a store closed and opened again (a new object; for milvus-lite also a new process)
  answers the same;
- the command lines (``indexer build/add/remove/list``, ``retrieval ask/compare --json``)
  exit 0 on both and print the same JSON shapes;
- the app (AppTest) answers from both, lists their articles, and picks up an article
  added from outside between two runs.

Across stores, with the real model: the seeds in milvus-lite give the same top-5 passages
as the local store for nearly every labelled question, and the same MRR@10 within two
points. On milvus-lite served on 127.0.0.1: an add and an ask run at once, and two
``--shard`` workers fill one store with every article exactly once.

Everything milvus-lite started here is stopped here: every store a test opens is closed at
its end, and the test checks that no milvus-lite process is left on its files.
"""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from indexer.build import build_index
from indexer.documents import load_documents
from indexer.settings import Settings
from indexer.stores import open_store
from indexer.stores.base import Store, document_key, key_doc_id, parse_id
from indexer.stores.local import LocalStore
from indexer.types import Document
from indexer.update import add_documents, remove_documents
from retrieval.compare import compare
from retrieval.searcher import Searcher
from support import (
    FAKE_CHUNKING, FAKE_MODEL_NAME, REPO_ROOT, STORE_QUESTIONS, SYNTHETIC_ARTICLES, FakeEmbedder, finish_all,
    in_repo_root, read_source, run_module, start_module, store_answers, write_articles,
)

LOCAL, LITE = "local", "milvus-lite"
KINDS = [LOCAL, pytest.param(LITE, marks=pytest.mark.slow)]
SEED_IDS = sorted(p.stem for p in (REPO_ROOT / "seeds").glob("*.txt"))
NATO_DOC = "004_6a67110f8947381e"
Q_NATO = "When did Turkey join NATO?"
Q_LAVA = "Which town did the lava flow toward in Iceland?"
SEED_QUESTIONS = (Q_NATO, "What weapons did Turkey sell to Ukraine?", "Why does Russia work with Turkey?",
                  "What is the best recipe for sourdough bread?")
QUESTION_FILES = ("seeds_questions.jsonl", "seeds_questions_holdout.jsonl", "seeds_questions_train.jsonl")
AGREEMENT_MIN = 0.90  # share of questions whose top-5 passages agree across stores
MRR_TOLERANCE = 0.02  # milvus-lite's MRR@10 within 2 points of the local store's

# Articles beyond SYNTHETIC_ARTICLES, for adds (distinct words, so BM25 tells them apart).
MARKETS = ("Central bank raises interest rates again\n\n"
           "The central bank raised interest rates by half a point on Thursday. Inflation stayed above the "
           "target for the third year. Mr. Okafor, the governor, said prices of food and fuel kept rising. "
           "Markets fell after the announcement; the currency gained.\n")
FOOTBALL = ("Club signs a new striker before the derby\n\n"
            "The football club signed a new striker from Lisbon on Monday. Fans cheered at the stadium when "
            "he was presented. The coach said the striker would start in Sunday's derby. The fee was not "
            "disclosed, but reports put it at twelve million euros.\n")
PENGUIN_UPDATE = "Krill swarms feed the colony in summer, when the ice retreats.\n"
CHESS_UPDATE = "The runner-up, a veteran from Riga, promised a rematch in Geneva.\n"
SHARD_ARTICLES = {  # for two `indexer add --shard` workers: 3 files each
    "bakery.txt": ("Village bakery wins a bread prize\n\nThe bakery in the old square won the national "
                   "sourdough prize on Saturday. Its baker rises at three every morning.\n"),
    "comet.txt": ("Comet visible to the naked eye\n\nA bright comet can be seen after sunset this week. "
                  "Astronomers said its tail stretches across ten degrees of the western sky.\n"),
    "harbour.txt": ("Harbour reopens after the storm\n\nThe harbour reopened on Tuesday after a storm "
                    "damaged the pier. Fishing boats returned with the first catch of cod in a fortnight.\n"),
    "library.txt": ("City library opens a night reading room\n\nThe city library opened a reading room that "
                    "stays open until midnight. Students queued outside before the doors opened at eight.\n"),
    "marathon.txt": ("Marathon record falls in Berlin\n\nA runner from Kenya set a marathon record in Berlin "
                     "on Sunday. She finished in two hours and eleven minutes on a cool morning.\n"),
    "orchard.txt": ("Frost threatens the cherry orchards\n\nA late frost threatened the cherry orchards "
                    "of the valley. Growers lit fires between the rows to keep the blossoms from freezing.\n"),
}


# --------------------------------------------------------------------------- helpers

def needs_lite() -> None:
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")


def fake_settings(kind: str, root: Path, name: str) -> Settings:
    """Fake-embedder settings for a fresh store of ``kind`` named ``name`` under ``root``."""
    base = replace(Settings(), index_dir=root / name, model_path=None, model_name=FAKE_MODEL_NAME,
                   chunking=FAKE_CHUNKING)
    return base if kind == LOCAL else replace(base, store=f"milvus:{root}/{name}.db")


def store_args(settings: Settings) -> list[str]:
    """The CLI options naming ``settings``'s store."""
    return ["--store", settings.store] if settings.store else ["--index", str(settings.index_dir)]


def lite_db(settings: Settings) -> Path | None:
    return Path(settings.store.removeprefix("milvus:")) if settings.store.startswith("milvus:") else None


def documents_of(*paths: Path | str) -> list[Document]:
    docs, skipped = load_documents([str(p) for p in paths])
    assert not skipped, skipped
    return docs


def seeds_documents() -> list[Document]:
    with in_repo_root():
        return documents_of("seeds")


def ids_of(store: Store) -> list[str]:
    return [i.doc_id for i in store.document_infos()]


class Opener:
    """Opens stores for one test and closes every one at its end; then checks that no
    milvus-lite process is left on the test's files (stores the app or a library call
    opened are found and closed too)."""

    def __init__(self) -> None:
        self.stores: list[Store] = []
        self.lite_files: set[Path] = set()
        self.uris: set[str] = set()

    def watch(self, settings: Settings) -> None:
        db = lite_db(settings)
        if db is not None:
            self.lite_files.add(db.absolute().resolve())
        elif settings.store:
            self.uris.add(settings.store)

    def open(self, settings: Settings) -> Store:
        self.watch(settings)
        store = open_store(settings)
        self.stores.append(store)
        return store

    def searcher(self, settings: Settings, embedder: Any) -> Searcher:
        return Searcher(self.open(settings), embedder, settings)

    def close_all(self) -> None:
        for store in reversed(self.stores):
            store.close()
        self.stores.clear()

    def stray_stores(self) -> list[Any]:
        """MilvusStore objects still connected to this test's files or servers."""
        if not self.lite_files and not self.uris:
            return []
        from indexer.stores.milvus import MilvusStore

        gc.collect()
        out = []
        for obj in gc.get_objects():
            if isinstance(obj, MilvusStore) and obj._client is not None:
                mine = (obj.path is not None and obj.path.absolute().resolve() in self.lite_files) or (
                    obj.uri in self.uris)
                if mine:
                    out.append(obj)
        return out

    def finish(self) -> None:
        self.close_all()
        for store in self.stray_stores():
            store.close()
        gc.collect()
        if self.lite_files:
            from indexer.stores.milvus import lite_processes

            deadline = time.monotonic() + 15
            left = [p for f in self.lite_files for p in lite_processes(f)]
            while left and time.monotonic() < deadline:
                time.sleep(0.2)
                left = [p for f in self.lite_files for p in lite_processes(f)]
            assert not left, f"milvus-lite processes outlived the test: {left}"


@pytest.fixture
def opener() -> Iterator[Opener]:
    o = Opener()
    try:
        yield o
    finally:
        o.finish()


@dataclass
class Kit:
    """One store kind for one test: fresh stores of that kind under ``root``."""

    kind: str
    root: Path
    opener: Opener
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = self.fresh("v")

    def fresh(self, name: str) -> Settings:
        settings = fake_settings(self.kind, self.root, name)
        self.opener.watch(settings)
        return settings

    def open(self, settings: Settings | None = None) -> Store:
        return self.opener.open(settings or self.settings)


@pytest.fixture(params=KINDS)
def kit(request: pytest.FixtureRequest, tmp_path: Path, opener: Opener) -> Kit:
    """A fresh fake-embedder store of each kind under tmp_path (local: ``tmp/v``; milvus-lite:
    ``milvus:tmp/v.db``, the default collection prefix)."""
    if request.param == LITE:
        needs_lite()
    return Kit(request.param, tmp_path, opener)


def stored_texts(store: Store) -> dict[str, Document]:
    """Every stored document (with its text), by id."""
    return {i.doc_id: store.document(i.doc_id) for i in store.document_infos()}


def check_hit(docs: Store | Mapping[str, Document | None], hit: Any) -> None:
    """The hit's offsets slice its article's stored text; the answer lies inside and slices
    exactly; the passage id names the hit's document (this version) and span."""
    doc = docs.get(hit.doc_id) if isinstance(docs, Mapping) else docs.document(hit.doc_id)
    assert doc is not None, hit.doc_id
    assert doc.text[hit.start:hit.end] == hit.text, (hit.passage_id, hit.text[:60])
    assert hit.start <= hit.answer.start < hit.answer.end <= hit.end, hit.passage_id
    assert doc.text[hit.answer.start:hit.answer.end] == hit.answer.text, hit.passage_id
    key, kind, start, end = parse_id(hit.passage_id)
    assert (kind, start, end) == ("p", hit.start, hit.end), hit.passage_id
    assert key_doc_id(key) == hit.doc_id and key == document_key(doc.doc_id, doc.sha256), hit.passage_id
    assert (hit.title, hit.source) == (doc.title, doc.source)


def check_json_hit(hit: dict[str, Any], *, ask: bool = True) -> None:
    """A --json hit (the documented fields and types) of an article read from a UTF-8 file
    slices that file."""
    types = {"rank": int, "score": float, "doc_id": str, "title": str, "source": str, "start": int,
             "end": int, "text": str, "answer": dict, "offsets_in": str, "passage_id": str, "citation": dict}
    if ask:
        types["support"] = dict  # an ask hit's verdict (compare gives each article's instead)
    for name, kind in types.items():
        assert type(hit[name]) is kind, (name, hit[name])
    source = read_source(hit["source"])
    assert hit["offsets_in"] == "file"
    assert source[hit["start"]:hit["end"]] == hit["text"]
    answer = hit["answer"]
    assert hit["start"] <= answer["start"] < answer["end"] <= hit["end"]
    assert source[answer["start"]:answer["end"]] == answer["text"]
    key, kind, start, end = parse_id(hit["passage_id"])
    assert (key_doc_id(key), kind, start, end) == (hit["doc_id"], "p", hit["start"], hit["end"])


def answers_json(searcher: Searcher, questions: Sequence[str]) -> list[dict[str, Any]]:
    return [searcher.ask(q).to_json() for q in questions]


def key_shape(value: Any) -> Any:
    """Only the keys of ``value`` (recursively; a list by the union of its dicts' keys):
    what both stores must print, whatever the values."""
    if isinstance(value, dict):
        return {k: key_shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            if isinstance(item, dict):
                for k, v in key_shape(item).items():
                    merged.setdefault(k, v)
        return ["list", merged]
    return "value"


# --------------------------------------------------------------------------- fake embedder, both stores

def test_adds_updates_and_removes_answer_as_a_fresh_build(kit: Kit, fake_embedder: FakeEmbedder) -> None:
    """Build, add, update (same file, new content), add, remove, re-add the removed content,
    revert an update, re-add everything unchanged, remove, update: the store answers
    exactly as a fresh build of the final articles in the same kind of store (documents,
    texts, headings, dense and BM25 rankings with their scores, passages with sentences and
    vectors, BM25 of passages and sentences, term counts; ask and compare JSON)."""
    emb, settings = fake_embedder, kit.settings
    folder = write_articles(kit.root / "articles", SYNTHETIC_ARTICLES)
    by_id = {d.doc_id: d for d in documents_of(folder)}
    store = kit.open()

    def add(*paths: Path) -> Any:
        return add_documents(documents_of(*paths), settings, emb, store=store)

    def live_ids() -> list[str]:
        reader = open_store(settings)  # a new object sees every write that landed
        try:
            return ids_of(reader)
        finally:
            reader.close()

    build_index([by_id["penguins"], by_id["volcano"]], settings, emb, store=store)
    assert live_ids() == ["penguins", "volcano"]
    assert add_documents([by_id["chess"]], settings, emb, store=store).added == ("chess",)
    assert live_ids() == ["chess", "penguins", "volcano"]
    with (folder / "penguins.txt").open("a", encoding="utf-8") as f:
        f.write(PENGUIN_UPDATE)
    assert add(folder / "penguins.txt").updated == ("penguins",)
    write_articles(folder, {"markets.txt": MARKETS})
    assert add(folder / "markets.txt").added == ("markets",)
    assert remove_documents(["volcano"], settings, store=store).removed == ("volcano",)
    assert live_ids() == ["chess", "markets", "penguins"]
    # The same content again: the same document key (and passage ids) as the removed version.
    assert add_documents([by_id["volcano"]], settings, emb, store=store).added == ("volcano",)
    # Back to the first version of a changed article (its first key again).
    write_articles(folder, {"penguins.txt": SYNTHETIC_ARTICLES["penguins.txt"]})
    assert add(folder / "penguins.txt").updated == ("penguins",)
    report = add(folder)
    assert (report.added, report.updated) == ((), ())
    assert report.unchanged == ("chess", "markets", "penguins", "volcano")
    assert remove_documents(["volcano"], settings, store=store).removed == ("volcano",)
    (folder / "volcano.txt").unlink()
    with (folder / "chess.md").open("a", encoding="utf-8") as f:
        f.write(CHESS_UPDATE)
    assert add(folder / "chess.md").updated == ("chess",)
    assert live_ids() == ["chess", "markets", "penguins"]

    final = documents_of(folder)
    fresh_settings = kit.fresh("fresh")
    fresh = kit.open(fresh_settings)
    build_index(final, fresh_settings, emb, store=fresh)
    incremental = kit.open()  # a new object on the updated store
    questions = (*STORE_QUESTIONS, "What did the governor say about prices?", "krill colony summer")
    assert store_answers(incremental, emb, questions) == store_answers(fresh, emb, questions)
    assert incremental.document_infos() == fresh.document_infos()
    counts = [(i.documents, i.passages, i.sentences) for i in (incremental.info, fresh.info)]
    assert counts[0] == counts[1] and counts[0][0] == 3
    a, b = Searcher(incremental, emb, settings), Searcher(fresh, emb, fresh_settings)
    for question in questions:
        assert a.ask(question).to_json() == b.ask(question).to_json(), question
    for question in questions[:3]:
        assert compare(a, question).to_json() == compare(b, question).to_json(), question
    # The store that did the writes answers the same as a new object on it.
    assert store_answers(store, emb, questions[:2]) == store_answers(incremental, emb, questions[:2])


def test_every_hit_slices_its_stored_text(kit: Kit, fake_embedder: FakeEmbedder) -> None:
    folder = write_articles(kit.root / "articles", {**SYNTHETIC_ARTICLES, "markets.txt": MARKETS})
    store = kit.open()
    build_index(documents_of(folder), kit.settings, fake_embedder, store=store)
    write_articles(folder, {"football.txt": FOOTBALL})
    add_documents(documents_of(folder / "football.txt"), kit.settings, fake_embedder, store=store)
    searcher = Searcher(store, fake_embedder, kit.settings)
    questions = (*STORE_QUESTIONS, "Who signed the new striker?", "How much was the prize in francs?")
    checked = 0
    for question in questions:
        for top_k in (3, 10):
            for hit in searcher.ask(question, top_k=top_k).hits:
                check_hit(store, hit)
                checked += 1
        for view in compare(searcher, question).articles:
            assert store.document(view.doc_id) is not None
            if view.hit is not None:
                assert view.hit.doc_id == view.doc_id
                check_hit(store, view.hit)
                checked += 1
    assert checked > 50


def test_a_reopened_store_answers_the_same(kit: Kit, fake_embedder: FakeEmbedder) -> None:
    folder = write_articles(kit.root / "articles", SYNTHETIC_ARTICLES)
    first = kit.open()
    build_index(documents_of(folder), kit.settings, fake_embedder, store=first)
    questions = (*STORE_QUESTIONS, "Who organised the chess tournament?")
    before = answers_json(Searcher(first, fake_embedder, kit.settings), questions)
    everything = store_answers(first, fake_embedder)
    version = first.version()
    first.close()
    again = kit.open()
    assert again is not first and again.version() == version
    assert answers_json(Searcher(again, fake_embedder, kit.settings), questions) == before
    assert store_answers(again, fake_embedder) == everything


# --------------------------------------------------------------------------- real model: the seeds

@pytest.fixture(scope="session")
def lite_seeds(tmp_path_factory: pytest.TempPathFactory, seeds_index: Settings,
               real_embedder) -> Settings:  # type: ignore[no-untyped-def]
    """The seeds in milvus-lite (built once per run, reusing the local seeds index's
    vectors; the store is closed again: every test opens its own)."""
    needs_lite()
    root = tmp_path_factory.mktemp("lite_seeds")
    settings = replace(seeds_index, index_dir=root / "unused", store=f"milvus:{root}/seeds.db")
    store = open_store(settings)
    try:
        result = build_index(seeds_documents(), settings, real_embedder, store=store,
                             previous=LocalStore(seeds_index.index_dir))
    finally:
        store.close()
    assert (result.documents, result.embedded_chunks, result.embedded_sentences) == (len(SEED_IDS), 0, 0)
    return settings


@pytest.fixture(params=[pytest.param(kind, marks=pytest.mark.slow) for kind in (LOCAL, LITE)])
def seeds_settings(request: pytest.FixtureRequest, seeds_index: Settings, opener: Opener) -> Settings:
    """The real-model seeds store of each kind (shared by the session: do not write)."""
    settings = seeds_index if request.param == LOCAL else request.getfixturevalue("lite_seeds")
    opener.watch(settings)
    return settings


@pytest.mark.slow
def test_a_new_process_answers_the_same(seeds_settings: Settings, real_embedder,  # type: ignore[no-untyped-def]
                                        opener: Opener) -> None:
    """Closed and opened again — a new object, then a new process (the CLI) — the store
    gives the same answers."""
    first = opener.searcher(seeds_settings, real_embedder)
    before = answers_json(first, SEED_QUESTIONS)
    first.store.close()
    again = opener.searcher(seeds_settings, real_embedder)
    assert again.store is not first.store
    assert answers_json(again, SEED_QUESTIONS) == before
    opener.close_all()  # milvus-lite embedded: one process at a time
    proc = run_module("retrieval", "ask", *SEED_QUESTIONS, *store_args(seeds_settings), "--json")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in proc.stdout.splitlines()] == before
    assert before[0]["hits"][0]["doc_id"] == NATO_DOC and "1952" in before[0]["hits"][0]["answer"]["text"]


class Memo:
    """A searcher that answers each (question, top_k) once (evaluate_seeds and the
    agreement check ask the same questions)."""

    def __init__(self, searcher: Searcher) -> None:
        self._searcher = searcher
        self._asked: dict[tuple[str, int], Any] = {}

    def ask(self, question: str, top_k: int | None = None) -> Any:
        key = (question, self._searcher.settings.top_k if top_k is None else top_k)
        if key not in self._asked:
            self._asked[key] = self._searcher.ask(question, top_k)
        return self._asked[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._searcher, name)


@pytest.mark.slow
def test_lite_agrees_with_local_on_every_seed_question(  # type: ignore[no-untyped-def]
        seeds_index: Settings, lite_seeds: Settings, real_embedder, opener: Opener,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Over every labelled seed question (seeds_questions, _holdout, _train): the top-5
    passages (as sets) agree for at least 90% of questions, every hit slices its source on
    both stores, and milvus-lite's MRR@10 is within 2 points of the local store's."""
    from bench.eval import evaluate_seeds, load_questions

    questions = [q for name in QUESTION_FILES for q in load_questions(REPO_ROOT / "bench" / "data" / name)]
    assert len(questions) > 300
    local, lite = (Memo(opener.searcher(s, real_embedder)) for s in (seeds_index, lite_seeds))
    assert local.store.info.kind == "local" and lite.store.info.kind == "milvus"
    assert ids_of(local.store) == ids_of(lite.store) == SEED_IDS
    texts = {id(s): stored_texts(s.store) for s in (local, lite)}
    # The same documents (metadata, texts, headings) and the same passages, by id.
    assert local.store.document_infos() == lite.store.document_infos()
    assert texts[id(local)] == texts[id(lite)]
    for doc in texts[id(local)].values():  # the stored text is the file: slicing one slices the other
        assert doc is not None and doc.text == read_source(doc.source)
    assert all(local.store.headings(d) == lite.store.headings(d) for d in SEED_IDS)
    probe = real_embedder.encode([Q_NATO])[0]
    everything = [{pid for pid, _ in s.store.dense_search(probe, 100_000)} for s in (local, lite)]
    assert everything[0] == everything[1] and len(everything[0]) == local.store.info.passages
    disagree = []
    for q in questions:
        a, b = local.ask(q.question), lite.ask(q.question)
        for searcher, result in ((local, a), (lite, b)):
            assert len(result.hits) == searcher.settings.top_k
            for hit in result.hits:
                check_hit(texts[id(searcher)], hit)
        top_a, top_b = {h.passage_id for h in a.hits}, {h.passage_id for h in b.hits}
        if top_a != top_b:
            disagree.append((q.id, len(top_a ^ top_b) // 2))
    agreement = 1 - len(disagree) / len(questions)
    mrr_local = evaluate_seeds(local, questions)["mrr@10"]
    mrr_lite = evaluate_seeds(lite, questions)["mrr@10"]
    for searcher in (local, lite):  # the top-10 answers evaluate_seeds asked for slice exactly too
        for (question, top_k), result in searcher._asked.items():
            if top_k == 10:
                for hit in result.hits:
                    check_hit(texts[id(searcher)], hit)
    report = (f"{len(questions)} questions: top-5 passages agree on {agreement:.1%} "
              f"(differing: {disagree[:20]}{' …' if len(disagree) > 20 else ''}); "
              f"MRR@10 local {mrr_local:.4f}, milvus-lite {mrr_lite:.4f} "
              f"(difference {mrr_lite - mrr_local:+.4f})")
    with capsys.disabled():
        print(f"\n[store contract] {report}")
    assert agreement >= AGREEMENT_MIN, report
    assert abs(mrr_lite - mrr_local) <= MRR_TOLERANCE, report


# --------------------------------------------------------------------------- the command lines, both stores

def _both(commands: dict[str, list[str]]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run one command per store at once (they load the model in parallel); each exits 0."""
    done = finish_all({kind: start_module(*args) for kind, args in commands.items()})
    for kind, proc in done.items():
        assert proc.returncode == 0, (kind, proc.args, proc.stderr)
        assert "Traceback" not in proc.stderr, (kind, proc.stderr)
    return done


def _same_text(done: dict[str, subprocess.CompletedProcess[str]], where: dict[str, str]) -> str:
    """The commands' outputs, with the store's location and timings taken out, are equal."""
    import re

    texts = {kind: re.sub(r" in \d+\.\d s\.", " in N s.", p.stdout.replace(where[kind], "STORE"))
             for kind, p in done.items()}
    assert texts[LOCAL] == texts[LITE], texts
    return texts[LOCAL]


@pytest.mark.slow
def test_command_lines_on_both_stores(tmp_path: Path, opener: Opener) -> None:
    """indexer build/add/remove/list and retrieval ask/compare --json, with --index DIR and
    --store milvus:PATH.db: exit 0 on both, the same messages, and the same JSON shapes
    (list: the same rows)."""
    needs_lite()
    corpus, extra = tmp_path / "corpus", tmp_path / "extra"
    corpus.mkdir()
    extra.mkdir()
    first, second, third, fourth = SEED_IDS[0], SEED_IDS[1], NATO_DOC, SEED_IDS[2]
    for doc_id in (first, second, third):
        shutil.copy(REPO_ROOT / "seeds" / f"{doc_id}.txt", corpus)
    added = shutil.copy(REPO_ROOT / "seeds" / f"{fourth}.txt", extra)
    settings = {LOCAL: replace(Settings(), index_dir=tmp_path / "index"),
                LITE: replace(Settings(), store=f"milvus:{tmp_path}/cli.db")}
    for s in settings.values():
        opener.watch(s)
    args = {kind: store_args(s) for kind, s in settings.items()}
    where = {LOCAL: str(tmp_path / "index"), LITE: settings[LITE].store}

    built = _same_text(_both({k: ["indexer", "build", str(corpus), *a] for k, a in args.items()}), where)
    assert built.startswith("Indexed 3 articles, ") and "into STORE" in built
    text = _same_text(_both({k: ["indexer", "build", str(corpus), "--if-changed", *a]
                             for k, a in args.items()}), where)
    assert text.strip() == "Index at STORE is up to date (3 articles)."
    text = _same_text(_both({k: ["indexer", "add", str(added), *a] for k, a in args.items()}), where)
    assert "Added 1, updated 0, unchanged 0, skipped 0." in text and "Index now holds 4 articles" in text
    text = _same_text(_both({k: ["indexer", "add", str(corpus), str(added), *a]
                             for k, a in args.items()}), where)
    assert "Added 0, updated 0, unchanged 4, skipped 0." in text
    text = _same_text(_both({k: ["indexer", "remove", second, *a] for k, a in args.items()}), where)
    assert text.startswith(f"Removed {second}. Index now holds 3 articles")

    text = _same_text(_both({k: ["indexer", "verify", *a] for k, a in args.items()}), where)
    assert text.strip() == "Index at STORE is intact."
    text = _same_text(_both({k: ["indexer", "list", *a] for k, a in args.items()}), where)
    assert text.splitlines()[-1].startswith("3 articles, ")
    listed = _both({k: ["indexer", "list", "--json", *a] for k, a in args.items()})
    rows = {k: [json.loads(line) for line in p.stdout.splitlines()] for k, p in listed.items()}
    assert rows[LOCAL] == rows[LITE]  # the same articles, sources, passage counts, sizes
    assert [r["doc_id"] for r in rows[LOCAL]] == sorted([first, third, fourth])
    for row in rows[LOCAL]:
        assert set(row) >= {"doc_id", "title", "date", "url", "source", "chunks", "chars"}
        assert row["chars"] == len(read_source(row["source"]))

    questions = (Q_NATO, "What did the United States suggest Turkey do with its Russian missiles?",
                 "What is the best recipe for sourdough bread?")
    asked = _both({k: ["retrieval", "ask", *questions, "--json", *a] for k, a in args.items()})
    answers = {k: [json.loads(line) for line in p.stdout.splitlines()] for k, p in asked.items()}
    for kind in (LOCAL, LITE):
        assert [a["question"] for a in answers[kind]] == list(questions)
    assert key_shape(answers[LOCAL]) == key_shape(answers[LITE])
    for kind in (LOCAL, LITE):
        nato = answers[kind][0]
        top = nato["hits"][0]
        assert nato["answerable"] and top["doc_id"] == NATO_DOC and "1952" in top["answer"]["text"]
        for answer in answers[kind]:
            assert [h["rank"] for h in answer["hits"]] == list(range(1, 6))
            assert {h["doc_id"] for h in answer["hits"]} <= {first, third, fourth}
            for hit in answer["hits"]:
                check_json_hit(hit)
    assert [a["answerable"] for a in answers[LOCAL]] == [a["answerable"] for a in answers[LITE]]

    compared = _both({k: ["retrieval", "compare", Q_NATO, "--json", *a] for k, a in args.items()})
    comparisons = {k: json.loads(p.stdout) for k, p in compared.items()}
    assert key_shape(comparisons[LOCAL]) == key_shape(comparisons[LITE])
    for kind, obj in comparisons.items():
        assert obj["question"] == Q_NATO
        assert sorted(a["doc_id"] for a in obj["articles"]) == sorted([first, third, fourth]), kind
        for article in obj["articles"]:
            if article["hit"] is not None:
                assert article["hit"]["doc_id"] == article["doc_id"]
                check_json_hit(article["hit"], ask=False)
    assert ({a["doc_id"] for a in comparisons[LOCAL]["articles"] if a["mentioned"]}
            == {a["doc_id"] for a in comparisons[LITE]["articles"] if a["mentioned"]})


# --------------------------------------------------------------------------- the app, both stores

APP = str(REPO_ROOT / "app.py")


def _html(at: Any) -> list[str]:
    return [element.value for element in at.html]


def _messages(elements: Any) -> list[str]:
    return [e.value for e in elements]


def _sidebar(at: Any) -> str:
    return "\n".join(m.value for m in at.sidebar.markdown)


def _answer_marks(at: Any) -> list[str]:
    passages = [b for b in _html(at) if 'class="vb-passage"' in b]
    return [b.split('<mark class="answer">', 1)[1].split("</mark>", 1)[0] for b in passages
            if '<mark class="answer">' in b]


def _ask(at: Any, question: str) -> Any:
    at.text_input(key="question").input(question)
    (submit,) = [b for b in at.button if b.label == "Ask"]
    submit.click()
    return at.run()


def _view(at: Any, name: str) -> Any:
    at.segmented_control(key="view").set_value(name)
    return at.run()


def _collection_ids(at: Any) -> list[str]:
    assert not at.exception, _messages(at.exception)
    cards = [b for b in _html(at) if 'class="vb-file"' in b]
    keys = sorted(b.key[len("remove-"):] for b in at.button if (b.key or "").startswith("remove-"))
    assert f"{len(keys)} articles" in _messages(at.subheader)
    assert len(cards) == len(keys)
    return keys


@pytest.mark.slow
@pytest.mark.parametrize("kind", [LOCAL, LITE])
def test_the_app_on_both_stores(kind: str, tmp_path: Path, seeds_index: Settings,  # type: ignore[no-untyped-def]
                                real_embedder, opener: Opener, monkeypatch: pytest.MonkeyPatch) -> None:
    """VERBATIM_STORE names the store: the Answers view highlights the answering sentence,
    the Collection view lists the seeds, and an article added from outside between two
    runs shows up (for milvus-lite embedded, from this same process)."""
    from streamlit.testing.v1 import AppTest

    if kind == LITE:
        needs_lite()
    settings = replace(Settings(), index_dir=tmp_path / "index",
                       store="" if kind == LOCAL else f"milvus:{tmp_path}/app.db")
    store = opener.open(settings)
    build_index(seeds_documents(), settings, real_embedder, store=store,
                previous=LocalStore(seeds_index.index_dir))
    opener.close_all()
    monkeypatch.setenv("VERBATIM_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("VERBATIM_STORE", settings.store)

    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, _messages(at.exception)
    assert not at.error, _messages(at.error)
    assert f"**Articles:** {len(SEED_IDS)}" in _sidebar(at)
    assert ("**Store:** Milvus at" in _sidebar(at)) == (kind == LITE)
    at = _ask(at, Q_NATO)
    assert not at.exception, _messages(at.exception)
    marks = _answer_marks(at)
    assert marks and "1952" in marks[0], marks[:1]
    assert any(NATO_DOC in b and f"seeds/{NATO_DOC}.txt" in b for b in _html(at))
    at = _view(at, "Collection")
    assert _collection_ids(at) == SEED_IDS

    # Added from outside (the library, as `python -m indexer add` does) between two runs.
    more = write_articles(tmp_path / "more", {"volcano.txt": SYNTHETIC_ARTICLES["volcano.txt"]})
    writer = opener.open(settings)
    assert add_documents(documents_of(more), settings, real_embedder, store=writer).added == ("volcano",)
    writer.close()
    at.run()
    assert _collection_ids(at) == sorted([*SEED_IDS, "volcano"])
    assert f"**Articles:** {len(SEED_IDS) + 1}" in _sidebar(at)
    at = _view(at, "Answers")
    at = _ask(at, Q_LAVA)
    assert not at.exception, _messages(at.exception)
    marks = _answer_marks(at)
    assert marks and "Grindavik" in marks[0], marks[:1]
    assert any(str(more / "volcano.txt") in b for b in _html(at))


# --------------------------------------------------------------------------- milvus-lite served, many processes

def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_served_lite_takes_concurrent_processes(tmp_path: Path, seeds_index: Settings,  # type: ignore[no-untyped-def]
                                                real_embedder, opener: Opener) -> None:
    """One milvus-lite file served on 127.0.0.1: an `indexer add` and a `retrieval ask` at
    once both succeed; two `indexer add --shard` workers over one folder store every
    article exactly once."""
    needs_lite()
    from indexer.stores.milvus import lite_processes
    from indexer.stores.milvus_server import serve

    db = tmp_path / "served.db"
    volcano = write_articles(tmp_path / "one", {"volcano.txt": SYNTHETIC_ARTICLES["volcano.txt"]})
    volcano /= "volcano.txt"
    batch = write_articles(tmp_path / "batch", SHARD_ARTICLES)
    with serve(db) as uri:
        port = int(uri.rsplit(":", 1)[1])
        assert uri == f"http://127.0.0.1:{port}"
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert out.strip() and all("127.0.0.1" in line for line in out.splitlines()), out
        settings = replace(Settings(), store=uri)
        store = opener.open(settings)
        build_index(seeds_documents(), settings, real_embedder, store=store,
                    previous=LocalStore(seeds_index.index_dir))
        opener.close_all()

        done = finish_all({
            "add": start_module("indexer", "add", str(volcano), "--store", uri),
            "ask": start_module("retrieval", "ask", Q_NATO, Q_LAVA, "--store", uri, "--json"),
        })
        for name, proc in done.items():
            assert proc.returncode == 0, (name, proc.stderr)
            assert "Traceback" not in proc.stderr, (name, proc.stderr)
        assert "Added 1, updated 0, unchanged 0, skipped 0." in done["add"].stdout
        nato, lava = (json.loads(line) for line in done["ask"].stdout.splitlines())
        assert nato["hits"][0]["doc_id"] == NATO_DOC and "1952" in nato["hits"][0]["answer"]["text"]
        # Asked while the add ran: from before or after it, either whole.
        assert lava["question"] == Q_LAVA and len(lava["hits"]) == 5
        for hit in (*nato["hits"], *lava["hits"]):
            check_json_hit(hit)

        done = finish_all({f"{i}/2": start_module("indexer", "add", str(batch), "--shard", f"{i}/2",
                                                  "--store", uri) for i in (1, 2)})
        for name, proc in done.items():
            assert proc.returncode == 0, (name, proc.stderr)
            assert "Added 3, updated 0, unchanged 0, skipped 0." in proc.stdout, (name, proc.stdout)

        reader = opener.open(settings)
        infos = reader.document_infos()
        expected = sorted([*SEED_IDS, "volcano", *(Path(n).stem for n in SHARD_ARTICLES)])
        assert [i.doc_id for i in infos] == expected  # every article exactly once
        info = reader.info
        assert (info.documents, info.passages) == (len(expected), sum(i.passages for i in infos))
        for i in infos:
            doc = reader.document(i.doc_id)
            assert doc is not None and doc.sha256 == i.sha256 and len(doc.text) == i.chars
        assert not [w for w in reader.verify() if "unfinished" in w or "damaged" in w]
        searcher = Searcher(reader, real_embedder, settings)
        result = searcher.ask("Who set a marathon record in Berlin?")
        assert result.hits[0].doc_id == "marathon"
        for hit in result.hits:
            check_hit(reader, hit)
        proc = run_module("retrieval", "ask", Q_LAVA, "--store", uri, "--json")
        assert proc.returncode == 0, proc.stderr
        top = json.loads(proc.stdout)["hits"][0]
        assert top["doc_id"] == "volcano" and "Grindavik" in top["answer"]["text"]
        opener.close_all()
    deadline = time.monotonic() + 10
    while (_listening(port) or lite_processes(db)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _listening(port) and not lite_processes(db)


# --------------------------------------------------------------------------- messages that name the store

@pytest.mark.parametrize("kit", [LOCAL, pytest.param(LITE, marks=pytest.mark.slow)], indirect=True)
def test_removing_every_article_names_the_store(kit: Kit, fake_embedder: FakeEmbedder) -> None:
    """The refusal to empty the index names a fix for *this* store: for a Milvus store,
    deleting the local folder ``index`` (someone else's index, or nothing) is no fix."""
    from indexer.errors import DocumentError

    folder = write_articles(kit.root / "articles", SYNTHETIC_ARTICLES)
    store = kit.open()
    build_index(documents_of(folder), kit.settings, fake_embedder, store=store)
    with pytest.raises(DocumentError) as err:
        remove_documents(ids_of(store), kit.settings, store=store)
    message = str(err.value)
    assert "would leave an empty index" in message
    if kit.settings.store:
        assert kit.settings.store in message, message
        assert f"delete the folder {kit.settings.index_dir}" not in message, message
    else:
        assert f"delete the folder {kit.settings.index_dir}" in message, message
    assert ids_of(store) == ["chess", "penguins", "volcano"]  # nothing removed


@pytest.mark.parametrize("kit", [LOCAL, pytest.param(LITE, marks=pytest.mark.slow)], indirect=True)
def test_the_same_id_skip_names_the_store(kit: Kit, fake_embedder: FakeEmbedder) -> None:
    """An article whose id belongs to an indexed article from another file is skipped; the
    command the warning suggests (remove the other first) must name this store, as the
    unknown-id error of remove does (``--index DIR`` / ``--store URI``)."""
    folder = write_articles(kit.root / "articles", SYNTHETIC_ARTICLES)
    chess = "Chess club news\n\nThe chess club meets on Fridays in the town hall.\n"
    other = write_articles(kit.root / "elsewhere", {"chess.md": chess})
    store = kit.open()
    build_index(documents_of(folder), kit.settings, fake_embedder, store=store)
    report = add_documents(documents_of(other), kit.settings, fake_embedder, store=store)
    (skipped,) = report.skipped
    assert "already has the id 'chess'" in skipped.reason
    assert "python -m indexer remove chess" in skipped.reason
    where = " ".join(store_args(kit.settings))
    assert f"python -m indexer remove chess {where}" in skipped.reason, skipped.reason


# --------------------------------------------------------------------------- a rebuild never drops another writer's change

@pytest.mark.parametrize("kit", [LOCAL, pytest.param(LITE, marks=pytest.mark.slow)], indirect=True)
def test_a_rebuild_based_on_an_older_version_is_refused(kit: Kit, fake_embedder: FakeEmbedder) -> None:
    """A full rewrite computed from what the store held (``add`` after a settings change)
    is refused when another writer landed meanwhile: nothing is written, that writer's
    article stays."""
    from indexer.errors import IndexLockedError

    folder = write_articles(kit.root / "articles", SYNTHETIC_ARTICLES)
    store = kit.open()
    build_index(documents_of(folder), kit.settings, fake_embedder, store=store)
    before = store.version()
    other = write_articles(kit.root / "other", {"markets.txt": MARKETS})
    add_documents(documents_of(other), kit.settings, fake_embedder, store=kit.open())  # another writer
    assert store.version() != before
    with pytest.raises(IndexLockedError, match="Another writer changed the index .* Run the command again"):
        build_index(documents_of(folder), kit.settings, fake_embedder, store=store, based_on=before)
    store.reopen()
    assert ids_of(store) == ["chess", "markets", "penguins", "volcano"]
    # Based on the version it holds now, the same rebuild goes through.
    build_index(documents_of(folder), kit.settings, fake_embedder, store=store, based_on=store.version())
    store.reopen()
    assert ids_of(store) == ["chess", "penguins", "volcano"]


def test_index_alone_means_the_folder_and_both_are_a_usage_error(tmp_path: Path) -> None:
    """`--index DIR` with VERBATIM_STORE set works on the folder (`make index` never writes
    the seeds into someone's Milvus collection); `--index` with `--store` is refused."""
    env = {"VERBATIM_STORE": f"milvus:{tmp_path}/never.db"}
    p = run_module("indexer", "list", "--index", str(tmp_path / "folder"), **env)
    assert p.returncode == 3 and f"No index at {tmp_path / 'folder'}" in p.stderr, p.stderr
    assert not (tmp_path / "never.db").exists()
    for module, args in (("indexer", ["list"]), ("retrieval", ["ask", "chess"])):
        p = run_module(module, *args, "--index", str(tmp_path / "index"), "--store", f"milvus:{tmp_path}/x.db",
                       **env)
        assert p.returncode == 2 and "not both" in p.stderr, p.stderr
        assert not (tmp_path / "x.db").exists()


def test_bad_store_options_are_refused_without_printing_credentials(tmp_path: Path) -> None:
    """A malformed --shard is a usage error (2); a store URI of an unknown kind is a
    setting error (3) whose message never shows the password written into it."""
    p = run_module("indexer", "add", str(tmp_path), "--shard", "3/2", "--index", str(tmp_path / "index"))
    assert p.returncode == 2 and "--shard I/N needs 1 <= I <= N" in p.stderr, p.stderr
    for uri in ("htp://user:s3cret@db.example:19530", "http://user:s3/c#ret@"):
        p = run_module("indexer", "list", "--store", uri)
        assert p.returncode == 3 and "s3" not in p.stderr and "Traceback" not in p.stderr, p.stderr
