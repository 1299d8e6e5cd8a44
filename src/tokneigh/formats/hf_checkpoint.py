"""Hugging Face checkpoints (a local folder or a hub repo): config.json, the tokenizer, and
one embedding tensor.

The fast path reads only the embedding tensor from safetensors (no torch, no transformers);
other formats, and architectures whose embedding tensor cannot be named from the file alone,
fall back to transformers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import TiedEmbeddings
from ..reporting import Report
from ..sources.local_files import read_regular
from ..sources.models import ModelSource
from .checkpoint_files import CheckpointFiles, missing, open_checkpoint, read_index
from .extracted import Extracted
from .rows import RowBlocks
from .safetensors import safetensors_names, safetensors_rows
from .tokenizer_files import check_tokenizer_size, clean_tokenizer, read_tokenizer_file
from .via_transformers import (
    name_from_transformers,
    output_name_from_transformers,
    quiet_transformers,
    read_output_with_transformers,
    read_with_transformers,
)

# Tensor names of input embeddings across families (GPT-2, BERT, Llama/Mistral/Qwen,
# GPT-NeoX, original Llama). A unique match is trusted; anything else asks transformers.
_EMBEDDING_SUFFIXES = (
    "wte.weight",
    "word_embeddings.weight",
    "embed_tokens.weight",
    "embed_in.weight",
    "tok_embeddings.weight",
)


def extract(source: ModelSource, report: Report, embeddings: str) -> Extracted:
    """The checkpoint's input (or, with ``embeddings="output"``, its untied output) matrix and
    its tokenizer."""
    files, config_path = open_checkpoint(source, report)
    folder = config_path.parent

    # Fingerprint before reading: a file rewritten while we read shows as a change next time.
    fingerprint = files.fingerprint() if source.is_local else {}
    tokenizer = read_tokenizer_file(files, folder)
    if embeddings == "output":
        rows, tensor = _read_output_embeddings(files, folder, report)
    else:
        rows, tensor = _read_embeddings(files, folder, report)
    tokenizer_json, special_ids, size = clean_tokenizer(tokenizer.text)
    check_tokenizer_size(files, tokenizer, size, rows.shape[0], tensor)
    if not source.is_local:
        fingerprint = files.fingerprint()  # the hub revision is known once a file is fetched
    return Extracted(
        rows=rows,
        tokenizer_json=tokenizer_json,
        special_ids=special_ids,
        tensor=tensor,
        resolved=files.describe(),
        fingerprint=fingerprint,
        tokenizer_size=size,
    )


def read_tokenizer(source: ModelSource, report: Report) -> tuple[str, list[int]]:
    """A checkpoint's tokenizer alone (its cleaned tokenizer.json and special ids), without
    reading any weights: what a command that only tokenizes needs."""
    files, config_path = open_checkpoint(source, report)
    tokenizer_json, special_ids, _ = clean_tokenizer(
        read_tokenizer_file(files, config_path.parent).text
    )
    return tokenizer_json, special_ids


def pick_embedding_tensor(names: list[str]) -> str | None:
    """The input-embedding tensor among a checkpoint's tensor names, if the names say so alone."""
    matches = [n for n in names if n.endswith(_EMBEDDING_SUFFIXES) and "position" not in n]
    return matches[0] if len(matches) == 1 else None


def _read_embeddings(
    files: CheckpointFiles, folder: Path, report: Report
) -> tuple[RowBlocks, str]:
    """The input matrix: streamed from safetensors; whole from transformers otherwise."""
    weight_map = read_index(files, "model.safetensors.index.json")
    if weight_map is not None:
        key = pick_embedding_tensor(list(weight_map)) or name_from_transformers(
            folder, list(weight_map)
        )
        shard = files.shard(weight_map[key])  # only the shard that holds the embeddings
        if shard is None:
            raise missing(files, f"weight file {weight_map[key]} is missing")
        return safetensors_rows(shard, key, report), key

    single = files.get("model.safetensors")
    if single is not None:
        names = safetensors_names(single)
        key = pick_embedding_tensor(names) or name_from_transformers(folder, names)
        return safetensors_rows(single, key, report), key

    if files.get("pytorch_model.bin") is not None:
        return _whole(*read_with_transformers(folder, report))
    bin_map = read_index(files, "pytorch_model.bin.index.json")
    if bin_map is not None:
        for shard_name in sorted(set(bin_map.values())):
            if files.shard(shard_name) is None:
                raise missing(files, f"weight file {shard_name} is missing")
        return _whole(*read_with_transformers(folder, report))
    raise missing(files, "no weights (model.safetensors or pytorch_model.bin)")


def _whole(matrix: np.ndarray, tensor: str) -> tuple[RowBlocks, str]:
    return RowBlocks.of(matrix), tensor


# --- output embeddings (the LM head) -------------------------------------------------------

# Tensor names of untied output embeddings: Llama/Mistral/Qwen/Gemma/T5 and most causal LMs
# (lm_head), GPT-NeoX (embed_out), BERT's masked-LM decoder. Tied checkpoints save none.
_OUTPUT_NAMES = ("lm_head.weight", "embed_out.weight", "cls.predictions.decoder.weight")


def pick_output_tensor(names: list[str]) -> str | None:
    """The output-embedding (LM head) tensor among a checkpoint's names, if the names say so."""
    matches = [n for n in names if any(n == s or n.endswith("." + s) for s in _OUTPUT_NAMES)]
    return matches[0] if len(matches) == 1 else None


def output_tensor(source: ModelSource, report: Report) -> str | None:
    """The tensor holding ``source``'s own output matrix, from config.json and the safetensors
    header alone (no weights, no torch in the usual cases): cheap enough to ask before a build.

    Raises TiedEmbeddings when there is none; None when only loading the checkpoint can tell
    (no safetensors file).
    """
    files, config_path = open_checkpoint(source, report)
    layout = _safetensors_layout(files)
    return None if layout is None else _output_tensor_name(config_path.parent, layout[0])


def _safetensors_layout(
    files: CheckpointFiles,
) -> tuple[list[str], Callable[[str], Path | None]] | None:
    """A safetensors checkpoint's tensor names, and where to find the file holding each one."""
    weight_map = read_index(files, "model.safetensors.index.json")
    if weight_map is not None:
        return list(weight_map), lambda key: files.shard(weight_map[key])
    single = files.get("model.safetensors")
    if single is None:
        return None
    return safetensors_names(single), lambda key: single


def _read_output_embeddings(
    files: CheckpointFiles, folder: Path, report: Report
) -> tuple[RowBlocks, str]:
    """The untied output matrix, from safetensors without torch; TiedEmbeddings if there is none."""
    layout = _safetensors_layout(files)
    if layout is None:
        if any(files.get(n) for n in ("pytorch_model.bin", "pytorch_model.bin.index.json")):
            return _whole(*read_output_with_transformers(folder, report))
        raise missing(files, "no weights (model.safetensors or pytorch_model.bin)")
    names, locate = layout
    key = _output_tensor_name(folder, names)
    path = locate(key)  # only the shard that holds the LM head
    if path is None:
        raise missing(files, f"the weight file holding {key} is missing")
    return safetensors_rows(path, key, report), key


def _output_tensor_name(folder: Path, names: list[str]) -> str:
    """Which tensor holds the untied output matrix, as transformers would tie or not tie it."""
    config = json.loads(read_regular(folder / "config.json").decode("utf-8"))
    tie = config.get("tie_word_embeddings") if isinstance(config, dict) else None
    if tie is True:
        raise TiedEmbeddings("its config.json sets tie_word_embeddings")
    key = pick_output_tensor(names)
    if key is not None and tie is None:
        # No explicit setting: transformers falls back on the config class's default (True for
        # GPT-2 and most, False for Llama), and then ignores a saved lm_head.weight when True.
        try:
            with quiet_transformers():
                from transformers import AutoConfig

                config_ = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
            tie = bool(config_.tie_word_embeddings)
        except Exception:  # an unknown model type: trust the saved tensor
            tie = False
        if tie:
            raise TiedEmbeddings("its config class ties the word embeddings by default")
    if key is None and tie is False:
        key = output_name_from_transformers(folder, names)  # an unusual head name
    if key is None:
        raise TiedEmbeddings("the checkpoint has no output matrix of its own (no lm_head.weight)")
    return key
