"""Results in a notebook (issue 22, item 2): a short ``repr`` (the class, the query, the model and
a few counts: never a dumped array or thousands of ids) and ``_repr_html_``, a compact HTML
table built from the result's own ``human()`` blocks, every string escaped.

The HTML is read back with the standard library's ``html.parser`` and compared, cell by cell,
with ``human()``: what the notebook shows is what the CLI table shows. Results come from
all-MiniLM-L6-v2's real weights, and from a word-level tokenizer whose tokens are markup."""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from checkpoints import write_tied_gpt2
from tokenizers import Tokenizer, models, pre_tokenizers

import tokneigh
from tokneigh import results
from tokneigh.results import Column, NeighborList, Table, model_label

SHARED_CACHE = True
HOSTILE = '<script>alert(1)</script> "&<>'
# Tags the HTML may hold: a table, its caption, rows and cells, a bold title, line breaks and
# <pre> for plain lines. Nothing else (no script, no img, no iframe, no event attributes).
ALLOWED_TAGS = {"div", "table", "caption", "b", "br", "thead", "tbody", "tr", "th", "td", "pre"}
MAX_REPR = 300


# --- reading the HTML back ---------------------------------------------------------------------


class _Reader(HTMLParser):
    """The blocks of the HTML: ("table", [title, *subtitle], header, rows) or ("line", text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple] = []
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.open: list[str] = []
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs
        if tag == "br":
            if self._text is not None:
                self._text.append("\n")
            return
        self.open.append(tag)
        if tag == "table":
            self.blocks.append(["table", [], [], []])
        elif tag == "tr":
            self._row: list[str] = []
        elif tag in ("caption", "th", "td", "pre"):
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (self.open, tag)  # well nested
        self.open.pop()
        if tag in ("caption", "th", "td", "pre"):
            assert self._text is not None
            text, self._text = "".join(self._text), None
            if tag == "caption":
                self.blocks[-1][1] = text.split("\n")
            elif tag == "pre":
                self.blocks.append(["line", text])
            else:
                self._row.append(text)
        elif tag == "tr":
            table = self.blocks[-1]
            if "thead" in self.open:
                table[2] = self._row
            else:
                table[3].append(self._row)

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)
        else:
            assert not data.strip(), f"text outside a cell: {data!r}"


def read_html(markup: str) -> _Reader:
    reader = _Reader()
    reader.feed(markup)
    reader.close()
    assert not reader.open, reader.open
    return reader


def expected_blocks(human: list) -> list:
    """``human()`` as the reader returns it."""
    out: list = []
    for block in human:
        if isinstance(block, Table):
            caption = [block.title, *block.subtitle]
            out.append(["table", caption, [c.name for c in block.columns], block.rows])
        else:
            out.append(["line", block])
    return out


def check_html(result: object) -> _Reader:
    markup = result._repr_html_()  # type: ignore[attr-defined]
    reader = read_html(markup)
    assert set(reader.tags) <= ALLOWED_TAGS, set(reader.tags) - ALLOWED_TAGS
    assert {name for name, _ in reader.attributes} <= {"style"}, reader.attributes
    assert reader.blocks == expected_blocks(result.human())  # type: ignore[attr-defined]
    return reader


# --- results on MiniLM's real weights ----------------------------------------------------------


@pytest.fixture(scope="module")
def minilm(minilm_dir: Path) -> tokneigh.Embeddings:
    return tokneigh.load(str(minilm_dir))


def _partial_graph(emb: tokneigh.Embeddings, rows: int = 300, k: int = 4) -> results.NeighborGraph:
    """The graph of MiniLM's first ``rows`` usable tokens, by their real neighbours (the whole
    vocabulary's all-pairs pass takes seconds; 300 rows already make the dataclass repr
    thousands of characters long)."""
    ids = emb.graph_rows()[:rows]
    lists = emb.neighbors_many([int(i) for i in ids], k=k, exclude_query=True)
    neighbors = np.array([[n.id for n in r.neighbors] for r in lists], dtype=np.int64)
    sims = np.array([[n.similarity for n in r.neighbors] for r in lists], dtype=np.float64)
    return results.NeighborGraph(emb.model, "cosine", k, False, ids, neighbors, sims, 0.25)


@pytest.fixture(scope="module")
def minilm_results(minilm: tokneigh.Embeddings) -> dict[str, object]:
    emb = minilm
    graph = _partial_graph(emb)
    from tokneigh.analyses.whole import hubness

    return {
        "neighbors": emb.neighbors("king", k=5),
        "neighbors_id": emb.neighbors(2332, k=5),
        "neighbors_centroid": emb.neighbors(emb.centroid(), k=5),
        "neighbor_lists": results.NeighborLists(emb.neighbors_many(["king", "queen"], k=3)),
        "compare": emb.compare("king", "queen"),
        "most_similar": emb.most_similar(positive=["king", "woman"], negative=["man"], k=3),
        "analogy": emb.analogy("man", "king", "woman", k=3),
        "verify": emb.verify("king", k=5, repeats=1),
        "map": emb.map("king", k=5),
        "scan": emb.scan("magikarp", top=3),
        "stats": emb.stats(pairs=1000),
        "graph": graph,
        "hubness": hubness(emb.view, graph, 3),
        "diff": emb.diff(emb.under("centered"), ["king"], sample=5, k=3, changed=1),
        "tokenization": emb.tokenize("banana split"),
        "tokenizations": results.Tokenizations(
            [emb.tokenize("banana"), emb.tokenize(" king")], [emb.tokenize(" banana"), None]
        ),
        "query": emb.query_tokens("banana split"),
        "long_tokenization": emb.tokenize("banana " * 2000),
        "long_query": emb.query_tokens("banana " * 2000),
        "long_neighbors": emb.neighbors("banana " * 2000, k=3),
    }


# The query each result stands for, as its repr names it (None: a result of no one query).
QUERY_IN_REPR = {
    "neighbors": "'king'",
    "neighbors_id": "#2332",
    "neighbors_centroid": "the centroid",
    "neighbor_lists": "'king'",
    "compare": "'queen'",
    "most_similar": "'woman'",
    "analogy": "'woman'",
    "verify": "'king'",
    "map": "'king'",
    "scan": "'magikarp'",
    "stats": None,
    "graph": None,
    "hubness": None,
    "diff": None,
    "tokenization": "'banana split'",
    "tokenizations": "'banana'",
    "query": "'banana split'",
    "long_tokenization": "'banana banana",
    "long_query": "'banana banana",
    "long_neighbors": "'banana banana",
}
WITHOUT_MODEL = {"tokenization", "tokenizations", "query", "long_tokenization", "long_query"}


@pytest.mark.parametrize("kind", list(QUERY_IN_REPR))
def test_repr_is_short_and_names_the_result(kind: str, minilm_results: dict) -> None:
    result = minilm_results[kind]
    text = repr(result)
    assert len(text) < MAX_REPR, (len(text), text[:400])
    assert text.startswith(type(result).__name__ + "("), text
    assert "\n" not in text and "array(" not in text, text
    assert str(result) == text  # print() shows the same line
    if kind not in WITHOUT_MODEL:
        assert model_label(minilm_results["neighbors"].model) in text, text
    shown = QUERY_IN_REPR[kind]
    if shown is not None:
        assert shown in text, text


def test_scan_repr_counts_the_reference_instead_of_listing_it(minilm_results: dict) -> None:
    scan = minilm_results["scan"]
    text = repr(scan)
    assert len(scan.reference_ids) > 1000  # what the dataclass repr used to list
    assert f"reference={len(scan.reference_ids)}" in text, text
    assert "magikarp" in text and "[" not in text, text  # no list of ids


def test_repr_survives_slots() -> None:
    """``@dataclass(slots=True)`` builds a new class: the explicit ``__repr__`` must survive it,
    and the classes stay slotted (no per-instance dict)."""
    for name in results.__all__:
        cls = getattr(results, name)
        if isinstance(cls, type) and hasattr(cls, "human"):
            assert "__slots__" in vars(cls), name
            assert "__repr__" in vars(cls) and "_repr_html_" in vars(cls), name
            # dataclass's own repr is wrapped in dataclasses.py; ours is written in results/
            assert "results" in cls.__repr__.__code__.co_filename, name
            assert "results" in cls._repr_html_.__code__.co_filename, name


RESULTS_WITH_HTML = [
    kind for kind in QUERY_IN_REPR if kind not in {"query", "long_query", "long_tokenization"}
]


@pytest.mark.parametrize("kind", RESULTS_WITH_HTML)
def test_html_is_the_human_table(kind: str, minilm_results: dict) -> None:
    result = minilm_results[kind]
    reader = check_html(result)
    blocks = result.human()
    assert reader.blocks, kind
    first = blocks[0]
    if isinstance(first, Table):
        assert reader.blocks[0][1][0] == first.title
        assert "<b>" + html.escape(first.title) + "</b>" in result._repr_html_()
    else:
        assert reader.blocks[0] == ["line", first]


def test_every_table_result_has_html() -> None:
    for name in results.__all__:
        cls = getattr(results, name)
        if isinstance(cls, type) and hasattr(cls, "human"):
            assert callable(getattr(cls, "_repr_html_", None)), name


# --- hostile text: a query, and a tokenizer whose tokens are markup ------------------------------


def test_hostile_query_text_is_escaped(minilm: tokneigh.Embeddings) -> None:
    emb = minilm
    made = [
        emb.neighbors(HOSTILE, k=3),
        emb.compare(HOSTILE, "king"),
        emb.most_similar(positive=[HOSTILE, "king"], k=3),
        emb.map(HOSTILE, k=3),
        emb.verify(HOSTILE, k=3, repeats=1),
        emb.tokenize(HOSTILE),
        results.NeighborLists(emb.neighbors_many([HOSTILE, "&amp;"], k=3)),
    ]
    for result in made:
        markup = result._repr_html_()
        assert "<script" not in markup and "alert(1)</" not in markup, markup[:300]
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
        reader = check_html(result)
        assert "<script>alert(1)</script>" in json.dumps(reader.blocks, ensure_ascii=False)
        assert len(repr(result)) < MAX_REPR
    # "&amp;" as a query is the five characters, not an escaped ampersand
    batch = made[-1]
    assert '"&amp;"' in read_html(batch._repr_html_()).blocks[1][1][0]


MARKUP_TOKENS = [
    "<script>alert(1)</script>",
    '"&<>',
    "</table><img src=x onerror=alert(1)>",
    "&amp;",
    "<!--",
    "]]>",
    "king",
    "queen",
]



@pytest.fixture(scope="module")
def markup_model(tmp_path_factory: pytest.TempPathFactory) -> tokneigh.Embeddings:
    """A word-level tokenizer whose every token is markup, under a model folder named as one."""
    vocab = {w: i for i, w in enumerate(MARKUP_TOKENS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="king"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    weights = np.random.default_rng(3).standard_normal((len(vocab), 8)).astype(np.float32)
    folder = tmp_path_factory.mktemp("markup") / "<b>model</b>&"
    return tokneigh.load(str(write_tied_gpt2(folder, tok, weights)))


def test_hostile_tokens_are_escaped(markup_model: tokneigh.Embeddings) -> None:
    emb = markup_model
    graph = emb.graph(k=3)
    made = [
        emb.neighbors("king", k=8),
        emb.neighbors(MARKUP_TOKENS[0], k=7),
        emb.compare(MARKUP_TOKENS[2], MARKUP_TOKENS[3]),
        emb.analogy(MARKUP_TOKENS[0], "king", MARKUP_TOKENS[1], k=3),
        emb.scan("norm", top=8),
        emb.hubness(k=3, graph=graph, hubs=8),
        emb.stats(pairs=50),
        graph,
        emb.map("king", k=5),
        emb.tokenize(" ".join(MARKUP_TOKENS)),
    ]
    for result in made:
        markup = result._repr_html_()
        for raw in ("<script", "<img", "<!--", "</table><", "<b>model"):
            assert raw not in markup, (type(result).__name__, raw)
        reader = check_html(result)
        cells = json.dumps(reader.blocks, ensure_ascii=False)
        assert any(t in cells for t in MARKUP_TOKENS[:6]) or isinstance(
            result, (results.SpaceStats, results.NeighborGraph)
        ), (type(result).__name__, cells[:300])
        assert len(repr(result)) < MAX_REPR, repr(result)
    listed = read_html(made[0]._repr_html_()).blocks[0][3]
    assert {row[1] for row in listed} >= {json.dumps(t) for t in MARKUP_TOKENS[:6]}


# --- built by hand: lone surrogates, huge results ------------------------------------------------


def _neighbor_list(query: str, rows: int) -> NeighborList:
    neighbors = [
        results.Neighbor(r + 1, r, f"t{r}\udcff", 1.0 - r / 1e4, f'"t{r}\\udcff"')
        for r in range(rows)
    ]
    return NeighborList(query, None, [1], ["x"], ['"x"'], "org/model", 10_000, 8, neighbors)


def test_lone_surrogates_do_not_break_the_notebook() -> None:
    """A query from the shell can hold a lone surrogate (undecodable argv bytes): the notebook
    sends the HTML as UTF-8 JSON, so it must encode, as the repr must print."""
    result = _neighbor_list("bad \udcff byte", 3)
    result._repr_html_().encode("utf-8")
    repr(result).encode("utf-8")
    assert "bad \\udcff byte" in result._repr_html_()


def test_a_huge_result_is_cut_and_says_so() -> None:
    result = _neighbor_list("many", 1200)
    reader = read_html(result._repr_html_())
    (table, note) = reader.blocks
    assert table[3] == result.human()[0].rows[:200]
    assert note == ["line", "… 1,000 more rows not shown (all of them: to_json())"]
    batch = results.NeighborLists([_neighbor_list(f"q{i}", 2) for i in range(70)])
    reader = read_html(batch._repr_html_())
    assert [b[0] for b in reader.blocks] == ["table"] * 50 + ["line"]
    assert reader.blocks[-1][1] == "… 20 more tables not shown (all of them: to_json())"
    assert len(repr(batch)) < MAX_REPR


def test_table_itself_has_short_repr_and_html() -> None:
    table = Table("T <i>", [Column("a"), Column("n", True)], [["x", "1"]] * 5000, ["sub & line"])
    assert len(repr(table)) < MAX_REPR and "rows=5000" in repr(table)
    assert read_html(table._repr_html_()).blocks[0][1] == ["T <i>", "sub & line"]
