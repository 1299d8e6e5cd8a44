"""`tokneigh export` (issue 21, item 5): the map for embedding-atlas (Parquet) and for the
Embedding Projector (vectors.tsv + metadata.tsv).

Read back with pyarrow, DuckDB and a re-implementation of the Projector's own TSV parser; the
neighbour ids and distances checked against a per-row loop over the raw weights normalized
by hand. The writers are tested on layouts built by hand (any xy, any clusters); the command
on the real layout (PCA: fast, deterministic)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from checkpoints import write_tied_gpt2
from helpers import assert_one_line_error, cli

import tokneigh
from tokneigh.errors import OutputFileError
from tokneigh.results import MapCluster, MapLayout

# Tokens a TSV or a viewer can get wrong: a tab, a newline, a carriage return, quotes, a
# leading space, a backslash, a number, the empty string; then plain filler words.
HOSTILE = ["king", "queen", "\t", "a\tb", "two\nlines", '"quoted"', " leading", "back\\slash",
           "cr\r", "123", "", "🎉"]
WORDS = HOSTILE + [f"w{i}" for i in range(30)]
SPECIAL = "[SEP]"  # id len(WORDS): a special token, left out unless --include-special
ZERO_ROW = len(HOSTILE)  # "w0"
COLUMNS = ["id", "token", "label", "special", "norm", "x", "y", "cluster", "cluster_name"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="king"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens([SPECIAL])
    weights = np.random.default_rng(7).standard_normal((len(WORDS) + 1, 8)).astype(np.float32)
    weights *= np.random.default_rng(8).uniform(0.5, 3.0, (len(WORDS) + 1, 1)).astype(np.float32)
    # A row with no direction is never laid out: the rows after it are numbered one less
    # than their token ids, so a neighbour id that is a token id, not a row, shows.
    weights[ZERO_ROW] = 0.0
    return write_tied_gpt2(tmp_path_factory.mktemp("export") / "m", tok, weights), weights


def reference_neighbors(raw: np.ndarray, rows: list[int], k: int) -> dict[int, list]:
    """Each row's k nearest among ``rows`` (itself left out) by cosine, ties by lower id: a
    loop over the rows normalized by hand."""
    raw = raw.astype(np.float64)[rows]
    unit = dict(zip(rows, raw / np.linalg.norm(raw, axis=1)[:, None]))
    out = {}
    for i in rows:
        sims = [(j, float(unit[i] @ unit[j])) for j in rows if j != i]
        out[i] = sorted(sims, key=lambda pair: (-pair[1], pair[0]))[:k]
    return out


def hand_layout(emb: tokneigh.Embeddings, include_special: bool = False) -> MapLayout:
    """A layout built by hand over the tokens a graph covers: random places, three clusters
    (names with a tab and a newline in them), one token in no cluster."""
    ids = emb.graph_rows(include_special)
    assert ZERO_ROW not in ids
    rng = np.random.default_rng(0)
    clusters = rng.integers(0, 3, ids.size).astype(np.int32)
    clusters[5] = -1
    names = ['"a\\tb", "king"', "tab\there", "line\nbreak"]
    return MapLayout(
        model=emb.model, method="pca", metric="cosine", neighbors=4,
        include_special=include_special, seed=0, ids=ids,
        xy=rng.standard_normal((ids.size, 2)).astype(np.float32), clusters=clusters,
        cluster_list=[MapCluster(i, int((clusters == i).sum()), [], names[i], 0.0, 0.0)
                      for i in range(3)],
        honesty=np.ones(ids.size),
    )  # fmt: skip


def projector_parse(text: str) -> tuple[list[str], list[dict[str, str | None]]]:
    """What the Embedding Projector makes of a metadata.tsv (parseMetadata in tensorboard's
    vz_projector/data-provider.ts): lines split on "\\n", blank ones skipped, the first line
    the header when it holds a tab, fields split on "\\t", an empty field no value."""
    rows, columns = [], ["label"]
    for number, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        if number == 0 and "\t" in line:
            columns = line.split("\t")
            continue
        values = line.split("\t")
        assert len(values) == len(columns), line  # else the Projector shifts the columns
        rows.append({c: (v if v != "" else None) for c, v in zip(columns, values)})
    return columns, rows


def unescape(text: str | None) -> str:
    """The TSV escapes undone (\\\\, \\t, \\n, \\r)."""
    if text is None:
        return ""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def check_atlas(path: Path, emb: tokneigh.Embeddings, raw: np.ndarray, layout: MapLayout,
                k: int) -> list[dict]:
    """The Parquet at ``path`` holds ``layout``'s tokens, their facts and their exact
    neighbours, as an independent computation says."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert table.column_names == [*COLUMNS, "neighbors"]
    assert str(table.schema.field("neighbors").type) == (
        "struct<ids: list<element: int32>, distances: list<element: double>>"
    )
    rows = table.to_pylist()
    ids = [r["id"] for r in rows]
    assert ids == layout.ids.tolist()
    reference = reference_neighbors(raw, ids, k)
    specials = set(emb.view.special_ids().tolist())
    for row, (x, y), cluster in zip(rows, layout.xy.tolist(), layout.clusters.tolist()):
        token_id = row["id"]
        assert row["token"] == emb.token_text(token_id)
        assert row["label"] == emb.view.shown(token_id)[1]
        assert row["special"] == (token_id in specials)
        assert row["norm"] == pytest.approx(float(np.linalg.norm(raw[token_id])), rel=1e-6)
        assert (row["x"], row["y"]) == (pytest.approx(x), pytest.approx(y))
        assert row["cluster"] == cluster
        name = layout.cluster_list[cluster].name if cluster >= 0 else None
        assert row["cluster_name"] == name
        # Each neighbour id is the row number of the neighbour's token in this table.
        expected = reference[token_id]
        assert [rows[n]["id"] for n in row["neighbors"]["ids"]] == [j for j, _ in expected]
        np.testing.assert_allclose(
            row["neighbors"]["distances"], [1 - s for _, s in expected], atol=1e-6
        )
    facts = {key.decode(): value.decode() for key, value in table.schema.metadata.items()}
    assert facts["model"] == emb.model and facts["metric"] == "cosine"
    assert json.loads(facts["k"]) == k and json.loads(facts["tokens"]) == len(rows)
    assert facts["distances"] == "1 - similarity"
    return rows


def check_projector(folder: Path, emb: tokneigh.Embeddings, raw: np.ndarray,
                    layout: MapLayout) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.tsv", "vectors.tsv"]
    ids = layout.ids.tolist()
    vectors_text = (folder / "vectors.tsv").read_text(encoding="utf-8")
    assert vectors_text.count("\n") == len(ids)  # no header
    vectors = np.loadtxt(folder / "vectors.tsv", delimiter="\t", dtype=np.float32)
    # The unit rows: exactly tokneigh's normalized rows, and the raw rows normalized by hand.
    np.testing.assert_array_equal(vectors, np.asarray(emb.unit)[ids])
    by_hand = raw[ids] / np.linalg.norm(raw[ids], axis=1)[:, None]
    np.testing.assert_allclose(vectors, by_hand, atol=1e-6)

    text = (folder / "metadata.tsv").read_text(encoding="utf-8")
    assert text.count("\n") == len(ids) + 1  # the header, then one line a token
    columns, rows = projector_parse(text)
    assert columns == COLUMNS
    assert [int(r["id"]) for r in rows] == ids
    for row, token_id, cluster in zip(rows, ids, layout.clusters.tolist()):
        assert unescape(row["token"]) == emb.token_text(token_id)
        assert row["special"] in ("true", "false")
        assert int(row["cluster"]) == cluster
        name = layout.cluster_list[cluster].name if cluster >= 0 else ""
        assert unescape(row["cluster_name"]) == name
    shown = {int(r["id"]): r["token"] for r in rows}
    # What a person sees in the Projector: escapes for the invisible, the rest as it is.
    assert shown[WORDS.index("a\tb")] == "a\\tb"
    assert shown[WORDS.index("two\nlines")] == "two\\nlines"
    assert shown[WORDS.index("cr\r")] == "cr\\r"
    assert shown[WORDS.index('"quoted"')] == '"quoted"'
    assert shown[WORDS.index(" leading")] == " leading"
    assert shown[WORDS.index("back\\slash")] == "back\\\\slash"
    assert shown[WORDS.index("")] is None  # an empty field: no value


# --- the writers, on layouts built by hand --------------------------------------------------


@pytest.mark.parametrize("include_special", [False, True])
def test_atlas_writer(model, tmp_path: Path, include_special: bool) -> None:
    from tokneigh.present.export_atlas import write_atlas
    from tokneigh.present.maprows import exact_neighbors

    folder, raw = model
    emb = tokneigh.load(str(folder))
    layout = hand_layout(emb, include_special)
    graph = exact_neighbors(emb, 4, include_special)
    out = tmp_path / "out"
    out.mkdir()
    path = out / "map.parquet"
    assert write_atlas(emb, layout, graph, path) == layout.ids.size
    rows = check_atlas(path, emb, raw, layout, 4)
    assert any(r["special"] for r in rows) == include_special
    assert [p.name for p in out.iterdir()] == ["map.parquet"]  # no scratch file left


def test_atlas_reads_in_duckdb(model, tmp_path: Path) -> None:
    import duckdb

    from tokneigh.present.export_atlas import write_atlas
    from tokneigh.present.maprows import exact_neighbors

    folder, raw = model
    emb = tokneigh.load(str(folder))
    layout = hand_layout(emb)
    path = tmp_path / "map.parquet"
    write_atlas(emb, layout, exact_neighbors(emb, 4, False), path)
    # king's neighbours by joining each neighbour id to the row it numbers.
    found = duckdb.sql(f"""
        WITH t AS (SELECT * FROM read_parquet('{path}', file_row_number = true)),
        pairs AS (SELECT token, unnest(neighbors.ids) AS nid,
                         unnest(neighbors.distances) AS distance,
                         unnest(range(1, len(neighbors.ids) + 1)) AS rank FROM t)
        SELECT n.token, p.rank, p.distance FROM pairs AS p
            JOIN t AS n ON n.file_row_number = p.nid
        WHERE p.token = 'king' ORDER BY p.rank""").fetchall()
    ids = layout.ids.tolist()
    expected = reference_neighbors(raw, ids, 4)[0]
    assert [(t, r) for t, r, _ in found] == [(WORDS[j], r + 1) for r, (j, _) in enumerate(expected)]
    np.testing.assert_allclose([d for *_, d in found], [1 - s for _, s in expected], atol=1e-6)


def test_projector_writer(model, tmp_path: Path) -> None:
    from tokneigh.present.export_projector import write_projector

    folder, raw = model
    emb = tokneigh.load(str(folder))
    layout = hand_layout(emb)
    parent = tmp_path / "out"
    parent.mkdir()
    out = parent / "projector"
    assert write_projector(emb, layout, out) == layout.ids.size
    check_projector(out, emb, raw, layout)
    assert [p.name for p in parent.iterdir()] == ["projector"]  # no scratch folder left
    # An empty folder is filled; a folder with anything in it is refused, untouched.
    empty = tmp_path / "empty"
    empty.mkdir()
    write_projector(emb, layout, empty)
    check_projector(empty, emb, raw, layout)
    with pytest.raises(OutputFileError, match="not empty"):
        write_projector(emb, layout, out)


def test_failed_writes_leave_nothing(model, tmp_path: Path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    from tokneigh.present.export_atlas import write_atlas
    from tokneigh.present.maprows import exact_neighbors

    folder, _ = model
    emb = tokneigh.load(str(folder))
    layout = hand_layout(emb)
    out = tmp_path / "out"
    out.mkdir()
    path = out / "map.parquet"
    path.write_bytes(b"the old file")

    def half_then_fail(table, where, *args, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", half_then_fail)
    with pytest.raises(OutputFileError, match="No space left"):
        write_atlas(emb, layout, exact_neighbors(emb, 4, False), path)
    assert path.read_bytes() == b"the old file"
    assert [p.name for p in out.iterdir()] == ["map.parquet"]

    import tokneigh.present.export_projector as projector

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(projector, "_write_metadata", fail)
    with pytest.raises(OutputFileError, match="No space left"):
        projector.write_projector(emb, layout, out / "projector")
    assert [p.name for p in out.iterdir()] == ["map.parquet"]


# --- the command ----------------------------------------------------------------------------


def test_export_command_both_formats(model, tmp_path: Path) -> None:
    folder, raw = model
    atlas, projector = tmp_path / "map.parquet", tmp_path / "projector"
    common = ["--method", "pca", "--neighbors", "5", "--model", folder]
    result = cli("export", "--format", "atlas", atlas, *common)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("wrote the pca map (cosine) of 41 tokens in ")
    result = cli("export", "-f", "projector", projector, *common)
    assert result.exit_code == 0, result.stderr

    emb = tokneigh.load(str(folder))
    layout = emb.layout("pca", 5)  # what the command laid out (read from the cache)
    check_atlas(atlas, emb, raw, layout, 5)
    check_projector(projector, emb, raw, layout)


@pytest.mark.parametrize(
    ("setup", "args", "fragment"),
    [
        (None, ["--format", "atlas", "{tmp}/map.csv"], "must end in .parquet"),
        (None, ["--format", "atlas", "{tmp}/nowhere/map.parquet"], "does not exist"),
        ("dir", ["--format", "projector", "{tmp}/taken"], "the folder is not empty"),
        ("file", ["--format", "projector", "{tmp}/taken"], "exists and is not a folder"),
        ("file", ["--format", "projector", "{tmp}/taken/out"], "does not exist"),
        ("pqdir", ["--format", "atlas", "{tmp}/dir.parquet"], "is a folder"),
        (None, ["--format", "gephi", "{tmp}/x"], "--format"),
        (None, ["--method", "tsne", "{tmp}/map.parquet"], "--method is umap or pca"),
    ],
)
def test_export_refuses_in_one_line(model, tmp_path: Path, setup, args, fragment) -> None:
    if setup == "dir":
        (tmp_path / "taken").mkdir()
        (tmp_path / "taken" / "mine.txt").write_text("keep")
    elif setup == "file":
        (tmp_path / "taken").write_text("keep")
    elif setup == "pqdir":
        (tmp_path / "dir.parquet").mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = cli("export", *[a.replace("{tmp}", str(tmp_path)) for a in args],
                 "--model", model[0])
    assert_one_line_error(result, 2, fragment)
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
