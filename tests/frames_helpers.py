"""Data frames in tests: ``assert_frame`` checks a frame against rows of the JSON contract, cell
by cell and typed; ``make_hostile_checkpoint`` writes a small byte-level BPE model whose
vocabulary holds the tokens that break naive readers (a quote, ``nan``, ``null``, ``007``, a
tab, a leading space, ``None``, byte fragments), with a zero row, a NaN row, an infinite row
and padding rows past the tokenizer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from tokneigh.results.json import json_text

DTYPES = {"int": "int64", "maybe_int": "Int64", "float": "float64", "text": "object",
          "bool": "bool", "object": "object"}  # fmt: skip


def contract(result) -> object:
    """The JSON contract as a script reads it."""
    return json.loads(json_text(result.to_json()))


def assert_frame(frame: pd.DataFrame, records: list[dict], kinds: dict[str, str]) -> None:
    """``frame`` holds ``records`` (from the JSON) in order, each column of its kind's type."""
    assert list(frame.columns) == list(kinds)
    assert len(frame) == len(records)
    assert list(frame.index) == list(range(len(records)))
    for name, kind in kinds.items():
        column = frame[name]
        assert str(column.dtype) == DTYPES[kind], (name, column.dtype)
        for got, want in zip(column.tolist(), (r[name] for r in records)):
            _assert_cell(got, want, kind, name)


def _assert_cell(got: object, want: object, kind: str, name: str) -> None:
    where = (name, got, want)
    if kind == "text":
        assert got is None if want is None else (type(got) is str and got == want), where
    elif kind == "maybe_int":
        assert got is pd.NA if want is None else (type(got) is int and got == want), where
    elif kind == "float":
        if want is None:
            assert isinstance(got, float) and math.isnan(got), where
        else:
            assert type(got) is float and got == want, where
    elif kind == "int":
        assert type(got) is int and got == want, where
    elif kind == "bool":
        assert type(got) is bool and got is want, where
    else:
        assert got == want, where


# Every one a token of the model (make_hostile_checkpoint checks).
HOSTILE = ['"', "nan", "null", "007", "\t", " Mike", "None"]
PADDING = 3  # rows past the tokenizer
ZERO_ROW, NAN_ROW, INF_ROW = 5, 9, 12


def make_hostile_checkpoint(folder: Path) -> Path:
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    folder.mkdir(parents=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=330,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    corpus = [
        'he said "nan" and "null" and "007" and "None" to Mike\tand Mike\u2019s friends',
        "Mike wrote nan, null, None and 007 in the king's banana market",
    ] * 30
    tokenizer.train_from_iterator(corpus, trainer)
    vocab = tokenizer.get_vocab()
    decoded = {tokenizer.decode([i]) for i in vocab.values()}
    missing = [t for t in HOSTILE if t not in decoded]
    assert not missing, missing
    tokenizer.save(str(folder / "tokenizer.json"))
    size = tokenizer.get_vocab_size()
    rows = size + PADDING
    config = {"model_type": "gpt2", "vocab_size": rows, "n_embd": 16, "n_layer": 1,
              "n_head": 2, "n_positions": 32}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    matrix = np.random.default_rng(7).standard_normal((rows, 16)).astype(np.float32)
    matrix[ZERO_ROW] = 0.0
    matrix[NAN_ROW, 3] = np.nan
    matrix[INF_ROW, 0] = np.inf
    save_file({"wte.weight": matrix}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder
