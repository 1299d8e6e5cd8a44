"""First use of a model: fetch its files and extract the input embedding matrix and tokenizer.

The fast path reads only the embedding tensor from a safetensors checkpoint (no torch, no
transformers), with ordinary file reads: never a memory map, so a checkpoint truncated while
it is read is a clear error, not a SIGBUS. Other formats, and architectures whose embedding
tensor cannot be named from the file alone, fall back to transformers. Hub files are looked up
in the Hugging Face cache first, so a model already downloaded there costs no network round
trip. Every failure leaves ``extract`` as one of the library's errors (``errors.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import HubUnavailableError, ModelNotFoundError, TiedEmbeddings, TokneighError
from ..reporting import Report, info
from ..sources.models import ModelSource, checkpoint_file, local_fingerprint, shard_name_problem

# Tensor names of input embeddings across families (GPT-2, BERT, Llama/Mistral/Qwen,
# GPT-NeoX, original Llama). A unique match is trusted; anything else asks transformers.
_EMBEDDING_SUFFIXES = (
    "wte.weight",
    "word_embeddings.weight",
    "embed_tokens.weight",
    "embed_in.weight",
    "tok_embeddings.weight",
)

_TOKENIZER_SOURCE_FILES = (
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
)

# The hub client's own default waits are long; a user with no network should hear it fast.
os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")


@dataclass
class Extracted:
    """What a checkpoint yields: the raw embedding matrix and everything to interpret it."""

    matrix: np.ndarray  # float32, one row per token id
    tokenizer_json: str
    special_ids: list[int]
    tensor: str
    resolved: str
    fingerprint: dict[str, Any] = field(default_factory=dict)
    # Storage type of each tensor read, for a GGUF file ({"token_embd.weight": "Q8_0"}).
    quantization: dict[str, str] = field(default_factory=dict)
    # The tokenizer's size, added tokens included, when the reader has parsed it already.
    tokenizer_size: int | None = None


def matrix_digest(matrix: np.ndarray) -> str:
    """SHA-256 of the matrix's bytes, read in place (``tobytes`` would copy 154 MB for GPT-2)."""
    return hashlib.sha256(np.ascontiguousarray(matrix).data).hexdigest()


class _LocalFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.is_file() else None

    def shard(self, name: str) -> Path | None:
        """A file named by the checkpoint's index; refused unless it is inside the folder."""
        path = checkpoint_file(self.folder, name)
        return path if path.is_file() else None

    def describe(self) -> str:
        return str(self.folder)

    def fingerprint(self) -> dict[str, Any]:
        return {"files": local_fingerprint(self.folder)}


class _HubFiles:
    """Files of one hub repo, from the local Hugging Face cache when there, else downloaded."""

    def __init__(self, repo_id: str, report: Report) -> None:
        self.repo_id = repo_id
        self.report = report
        self.revision: str | None = None
        self.missed_offline = False
        self.reachable = False

    def get(self, name: str) -> Path | None:
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        try:
            path = hf_hub_download(self.repo_id, name, local_files_only=True)
        except (LocalEntryNotFoundError, EntryNotFoundError):
            if constants.HF_HUB_OFFLINE:
                self.missed_offline = True
                return None
            self.report(info(f"downloading {name} from {self.repo_id}"))
            self._check_reachable(name)
            try:
                path = hf_hub_download(self.repo_id, name)
            except RepositoryNotFoundError as exc:
                raise ModelNotFoundError(
                    f"model {self.repo_id!r} does not exist on the Hugging Face hub "
                    "(or it is private or gated)"
                ) from exc
            except RevisionNotFoundError as exc:
                raise ModelNotFoundError(f"model {self.repo_id!r}: revision not found") from exc
            except LocalEntryNotFoundError as exc:
                raise HubUnavailableError(
                    f"model {self.repo_id!r} is not cached and the Hugging Face hub cannot be "
                    "reached"
                ) from exc
            except EntryNotFoundError:
                return None
            except HfHubHTTPError as exc:
                raise HubUnavailableError(
                    f"model {self.repo_id!r}: the hub answered {exc.__class__.__name__}: "
                    f"{str(exc).splitlines()[0]}"
                ) from exc
            except OSError as exc:
                raise HubUnavailableError(
                    f"model {self.repo_id!r}: download failed ({exc})"
                ) from exc
        found = Path(path)
        # hf_hub_download returns .../snapshots/<commit>/<name>
        commit = found.parent.name if "/" not in name else found.parents[name.count("/")].name
        self.revision = self.revision or commit
        return found

    def shard(self, name: str) -> Path | None:
        """A file named by the repo's index (a relative path inside the repo, or refused)."""
        problem = shard_name_problem(name)
        if problem is not None:
            raise ModelNotFoundError(
                f"model {self.repo_id!r}: its index names the weight file {_quoted(name)}, "
                f"which {problem}"
            )
        return self.get(name)

    def _check_reachable(self, name: str) -> None:
        """One HEAD request, no retries: fail fast when the hub cannot be reached.

        ``hf_hub_download`` alone would retry a timed-out request with a 60 s timeout and
        exponential backoff, leaving a user without network waiting for minutes.
        """
        if self.reachable:
            return
        from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
        from huggingface_hub.errors import HfHubHTTPError

        try:
            get_hf_file_metadata(
                hf_hub_url(self.repo_id, name), timeout=constants.HF_HUB_ETAG_TIMEOUT
            )
        except HfHubHTTPError:
            pass  # the hub answered (404, 401, ...): hf_hub_download reports it below
        except Exception as exc:  # timeout, refused, DNS, proxy: no answer from the hub
            raise HubUnavailableError(
                f"model {self.repo_id!r} is not cached and the Hugging Face hub at "
                f"{constants.ENDPOINT} cannot be reached ({_first_line(exc)}); HF_ENDPOINT "
                "may name a reachable mirror"
            ) from exc
        self.reachable = True

    def describe(self) -> str:
        return f"{self.repo_id}@{self.revision}" if self.revision else self.repo_id

    def fingerprint(self) -> dict[str, Any]:
        return {"revision": self.revision}

    def not_found(self, what: str) -> TokneighError:
        if self.missed_offline:
            return HubUnavailableError(
                f"model {self.repo_id!r} is not fully in the Hugging Face cache and "
                "HF_HUB_OFFLINE=1 forbids downloading it (unset HF_HUB_OFFLINE to allow it)"
            )
        return ModelNotFoundError(f"model {self.repo_id!r}: {what}")


def _open_checkpoint(source: ModelSource, report: Report) -> tuple[_LocalFiles | _HubFiles, Path]:
    """The checkpoint's files (local folder or hub repo) and its config.json, which must exist."""
    files: _LocalFiles | _HubFiles
    if source.is_local:
        files = _LocalFiles(Path(source.location))
    else:
        files = _HubFiles(source.location, report)
    config_path = files.get("config.json")
    if config_path is None:
        raise _missing(files, "no config.json: not a Hugging Face model checkpoint")
    return files, config_path


def extract(source: ModelSource, report: Report, embeddings: str = "input") -> Extracted:
    """Fetch (if needed) and read one checkpoint's input embeddings and tokenizer.

    ``embeddings="output"`` reads the untied output matrix (the LM head) instead, and raises
    TiedEmbeddings when the checkpoint has no output matrix of its own. Whatever goes wrong
    raises one of the library's errors, whose message's first line says why.
    """
    with _library_errors(source):
        if source.kind == "gguf":
            from . import gguf as gguf_file

            return gguf_file.extract(source, report, embeddings)
        return _extract(source, report, embeddings)


@contextlib.contextmanager
def _library_errors(
    source: ModelSource, what: str = "the checkpoint cannot be read"
) -> Iterator[None]:
    """Turn anything but a library error into one: a checkpoint's files can fail in more ways
    (truncated, malformed, unreadable, a library's own bug) than can be listed."""
    try:
        yield
    except TokneighError:
        raise
    except Exception as exc:  # a truncated or malformed file: json, torch, tokenizers, httpx...
        if not source.is_local:
            raise HubUnavailableError(
                f"model {source.location!r}: fetching or reading its files failed "
                f"({_first_line(exc)})"
            ) from exc
        raise ModelNotFoundError(f"{source.location}: {what} ({_first_line(exc)})") from exc


def _extract(source: ModelSource, report: Report, embeddings: str) -> Extracted:
    files, config_path = _open_checkpoint(source, report)
    folder = config_path.parent

    # Fingerprint before reading: a file rewritten while we read shows as a change next time.
    fingerprint = files.fingerprint() if source.is_local else {}
    tokenizer = _read_tokenizer(files, folder)
    if embeddings == "output":
        matrix, tensor = _read_output_embeddings(files, folder, report)
    else:
        matrix, tensor = _read_embeddings(files, folder, report)
    tokenizer_json, special_ids, size = _clean_tokenizer(tokenizer.text)
    _check_tokenizer_size(files, tokenizer, size, matrix.shape[0], tensor)
    if not source.is_local:
        fingerprint = files.fingerprint()  # the hub revision is known once a file is fetched
    fingerprint["matrix_sha256"] = matrix_digest(matrix)
    return Extracted(
        matrix=matrix,
        tokenizer_json=tokenizer_json,
        special_ids=special_ids,
        tensor=tensor,
        resolved=files.describe(),
        fingerprint=fingerprint,
        tokenizer_size=size,
    )


def _missing(files: _LocalFiles | _HubFiles, what: str) -> TokneighError:
    if isinstance(files, _HubFiles):
        return files.not_found(what)
    return ModelNotFoundError(f"{files.describe()}: {what}")


def read_tokenizer(source: ModelSource, report: Report) -> tuple[str, list[int]]:
    """A checkpoint's tokenizer alone (its cleaned tokenizer.json and special ids), without
    reading any weights: what a command that only tokenizes needs."""
    with _library_errors(source, "its tokenizer cannot be read"):
        if source.kind == "gguf":
            from . import gguf as gguf_file

            return gguf_file.read_tokenizer(source, report)
        files, config_path = _open_checkpoint(source, report)
        tokenizer_json, special_ids, _ = _clean_tokenizer(
            _read_tokenizer(files, config_path.parent).text
        )
        return tokenizer_json, special_ids


@dataclass
class _Tokenizer:
    """A checkpoint's tokenizer.json, as shipped or as transformers converted it."""

    text: str
    built_from: str | None = None  # the files transformers built it from (no tokenizer.json)
    needs: tuple[str, ...] = ()  # the files that tokenizer class reads its vocabulary from


def _read_tokenizer(files: _LocalFiles | _HubFiles, folder: Path) -> _Tokenizer:
    path = files.get("tokenizer.json")
    if path is not None:
        return _Tokenizer(path.read_text(encoding="utf-8"))
    # Older checkpoints ship vocab.json/merges.txt or a SentencePiece model: let transformers
    # convert them to the fast-tokenizer format once, at build time.
    found = [name for name in _TOKENIZER_SOURCE_FILES if files.get(name) is not None]
    if not found:
        raise _missing(files, "no tokenizer files (tokenizer.json, vocab.json, vocab.txt, ...)")
    with _quiet_transformers():
        from transformers import AutoTokenizer

        try:
            # Never run code shipped with a checkpoint (and never prompt for it either).
            tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
            text = tokenizer.backend_tokenizer.to_str()
        except Exception as exc:  # transformers raises many kinds; all mean "unusable"
            raise _missing(
                files,
                f"no tokenizer.json, and no tokenizer can be built from {', '.join(found)} "
                f"({_first_line(exc)})",
            ) from exc
    names = getattr(tokenizer, "vocab_files_names", None)
    needs = tuple(
        n for n in (names.values() if isinstance(names, dict) else ()) if isinstance(n, str)
    )
    return _Tokenizer(text, ", ".join(found), needs)


# A tokenizer this much smaller than the matrix is not the checkpoint's own: padding rows
# beyond the tokenizer (Qwen2, Phi: a few dozen to a few thousand) stay well above it.
_MIN_TOKENIZER_SHARE = 0.5


def _check_tokenizer_size(
    files: _LocalFiles | _HubFiles, tokenizer: _Tokenizer, size: int, rows: int, tensor: str
) -> None:
    """Refuse a tokenizer far smaller than the matrix: every query would tokenize to nothing
    (transformers builds a 1-token tokenizer from tokenizer_config.json alone)."""
    if size >= rows * _MIN_TOKENIZER_SHARE:
        return
    counted = f"{size:,} token{'' if size == 1 else 's'} for the {rows:,} rows of {tensor}"
    if tokenizer.built_from is None:
        raise _missing(files, f"its tokenizer.json has {counted}: not the tokenizer of this matrix")
    absent = [n for n in tokenizer.needs if n != "tokenizer.json" and files.get(n) is None]
    lacks = ", ".join(["no tokenizer.json", *(f"no {n}" for n in absent)])
    raise _missing(files, f"{lacks}: the tokenizer built from {tokenizer.built_from} has {counted}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0]}" if lines else exc.__class__.__name__


def _quoted(name: str) -> str:
    """A file name from a checkpoint's own files, as one line of a message can show it."""
    return repr(name if len(name) <= 200 else name[:200] + "...")


def _clean_tokenizer(tokenizer_json: str) -> tuple[str, list[int], int]:
    """Validate the tokenizer, strip padding/truncation, and list its special token ids and
    its size (added tokens included).

    A tokenizer that ``tokenizers`` loads but cannot write back faithfully (a vocabulary id
    given to two tokens loses one of them, and the merges using it no longer parse) is kept
    as shipped: the codec strips padding and truncation when it loads it anyway.
    """
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(tokenizer_json)
    except Exception as exc:
        raise ModelNotFoundError(
            f"the model's tokenizer.json cannot be parsed ({_first_line(exc)})"
        ) from exc
    size = int(tokenizer.get_vocab_size(with_added_tokens=True))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    try:
        cleaned = tokenizer.to_str()
        Tokenizer.from_str(cleaned)  # the cache entry must hold a tokenizer that parses
    except Exception:  # "Token `x` out of vocabulary": keep the original bytes
        cleaned = tokenizer_json
    added = json.loads(cleaned).get("added_tokens") or []
    special = sorted(int(t["id"]) for t in added if isinstance(t, dict) and t.get("special"))
    return cleaned, special, size


def pick_embedding_tensor(names: list[str]) -> str | None:
    """The input-embedding tensor among a checkpoint's tensor names, if the names say so alone."""
    matches = [n for n in names if n.endswith(_EMBEDDING_SUFFIXES) and "position" not in n]
    return matches[0] if len(matches) == 1 else None


def _read_embeddings(
    files: _LocalFiles | _HubFiles, folder: Path, report: Report
) -> tuple[np.ndarray, str]:
    weight_map = _read_index(files, "model.safetensors.index.json")
    if weight_map is not None:
        key = pick_embedding_tensor(list(weight_map)) or _name_from_transformers(
            folder, list(weight_map)
        )
        shard = files.shard(weight_map[key])  # only the shard that holds the embeddings
        if shard is None:
            raise _missing(files, f"weight file {weight_map[key]} is missing")
        return _read_safetensors(shard, key, report), key

    single = files.get("model.safetensors")
    if single is not None:
        names = safetensors_names(single)
        key = pick_embedding_tensor(names) or _name_from_transformers(folder, names)
        return _read_safetensors(single, key, report), key

    if files.get("pytorch_model.bin") is not None:
        return _read_with_transformers(folder, report)
    bin_map = _read_index(files, "pytorch_model.bin.index.json")
    if bin_map is not None:
        for shard_name in sorted(set(bin_map.values())):
            if files.shard(shard_name) is None:
                raise _missing(files, f"weight file {shard_name} is missing")
        return _read_with_transformers(folder, report)
    raise _missing(files, "no weights (model.safetensors or pytorch_model.bin)")


def _read_index(files: _LocalFiles | _HubFiles, name: str) -> dict[str, str] | None:
    """A sharded checkpoint's weight_map (tensor name -> file), each file checked to be a
    file of the checkpoint; None when there is no such index."""
    path = files.get(name)
    if path is None:
        return None
    try:
        data = json.loads(path.read_bytes())
    except ValueError as exc:  # UnicodeDecodeError included
        raise _missing(files, f"{name} is not valid JSON ({_first_line(exc)})") from exc
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if weight_map is None:
        raise _missing(files, f"{name} has no weight_map (which file holds each tensor)")
    if not (
        isinstance(weight_map, dict)
        and weight_map
        and all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items())
    ):
        raise _missing(files, f"the weight_map of {name} is not a map of tensor names to files")
    for shard_name in sorted(set(weight_map.values())):
        problem = shard_name_problem(shard_name)
        if problem is not None:
            raise _missing(
                files, f"{name} names the weight file {_quoted(shard_name)}, which {problem}"
            )
        if isinstance(files, _LocalFiles):
            checkpoint_file(files.folder, shard_name)  # no symlink out of the folder either
    return weight_map


# --- safetensors, read without a memory map ------------------------------------------------
#
# safetensors' own reader memory-maps the file: a checkpoint truncated while it is read then
# kills the process with SIGBUS. The format is simple enough to read with plain reads: an
# 8-byte little-endian header length, a JSON header ({name: {dtype, shape, data_offsets}}),
# then the data, each tensor at data_offsets (relative to the end of the header).

_MAX_HEADER = 100_000_000  # safetensors' own limit on the header size
_FLOAT_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8"}  # BF16: raw bits
_NON_FLOAT_DTYPES = frozenset(("BOOL", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "C64"))


def safetensors_names(path: Path) -> list[str]:
    """The tensor names a safetensors file holds, from its header alone."""
    with open(path, "rb", buffering=0) as handle:
        header, _ = _read_header(handle, path)
    return [name for name in header if name != "__metadata__"]


def _read_header(handle: BinaryIO, path: Path) -> tuple[dict[str, Any], int]:
    """A safetensors file's header, and where its data starts."""
    size = os.fstat(handle.fileno()).st_size
    prefix = _read_exactly(handle, 8, path)
    length = int.from_bytes(prefix, "little")
    if length > _MAX_HEADER:
        raise ModelNotFoundError(
            f"{path} is not a safetensors file (its header would be {length:,} bytes)"
        )
    if 8 + length > size:
        raise _truncated(path, f"{size:,} bytes, its header alone needs {8 + length:,}")
    raw = _read_exactly(handle, length, path)
    try:
        header = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError included
        raise ModelNotFoundError(
            f"{path} is not a safetensors file (its header is not JSON: {_first_line(exc)})"
        ) from exc
    if not isinstance(header, dict):
        raise ModelNotFoundError(f"{path} is not a safetensors file (its header is not a map)")
    return header, 8 + length


def _read_exactly(handle: BinaryIO, count: int, path: Path) -> bytes:
    data = handle.read(count)
    while data is not None and len(data) < count:
        more = handle.read(count - len(data))
        if not more:
            break
        data += more
    if data is None or len(data) < count:
        raise _truncated(path, "it ended before its header did")
    return data


def _truncated(path: Path, detail: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"the checkpoint file {path} is truncated or changed while it was read ({detail})"
    )


def _read_safetensors(path: Path, key: str, report: Report) -> np.ndarray:
    """One 2-D floating-point tensor of a safetensors file, as float32."""
    report(info(f"reading {key} from {path.name}"))
    with open(path, "rb", buffering=0) as handle:
        header, data_start = _read_header(handle, path)
        entry = header.get(key) if key != "__metadata__" else None
        if not isinstance(entry, dict):
            raise ModelNotFoundError(f"{path} holds no tensor {key}")
        dtype, shape, (begin, end) = _tensor_layout(entry, key, path)
        raw = np.empty(shape[0] * shape[1], dtype=np.dtype(_FLOAT_DTYPES[dtype]))
        if end - begin != raw.nbytes:
            raise ModelNotFoundError(
                f"{path}: the header gives tensor {key} {end - begin:,} bytes, but its dtype "
                f"and shape need {raw.nbytes:,}"
            )
        before = os.fstat(handle.fileno())
        if data_start + end > before.st_size:
            raise _truncated(
                path,
                f"{before.st_size:,} bytes, its header places {key} up to byte "
                f"{data_start + end:,}",
            )
        handle.seek(data_start + begin)
        view = raw.view(np.uint8).data  # a writable memoryview of the bytes
        got = 0
        while got < raw.nbytes:
            count = handle.readinto(view[got:])
            if not count:
                break
            got += count
        after = os.fstat(handle.fileno())
        if got < raw.nbytes:
            raise _truncated(path, f"{key}: {got:,} of {raw.nbytes:,} bytes could be read")
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise _truncated(path, f"it was rewritten while {key} was read")
    return _as_matrix(_to_float32(raw, dtype).reshape(shape), key)


def _tensor_layout(
    entry: dict[str, Any], key: str, path: Path
) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """A header entry's dtype, shape and byte range, or why it is not an embedding matrix."""
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not (
        isinstance(dtype, str)
        and isinstance(shape, list)
        and all(type(n) is int and n >= 0 for n in shape)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(n) is int for n in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        raise ModelNotFoundError(f"{path}: the header entry of tensor {key} is malformed")
    if dtype in _NON_FLOAT_DTYPES:
        raise ModelNotFoundError(
            f"tensor {key} has dtype {dtype}, not a floating-point embedding matrix"
        )
    if dtype not in _FLOAT_DTYPES:  # F8_E4M3, F8_E5M2, F6_..., F4, E8M0 and unknown ones
        raise ModelNotFoundError(
            f"tensor {key} has dtype {dtype}, which tokneigh does not read "
            "(it reads F32, F16, BF16 and F64 embedding matrices)"
        )
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise ModelNotFoundError(f"tensor {key} has shape {tuple(shape)}, not (vocab, dim)")
    return dtype, (shape[0], shape[1]), (offsets[0], offsets[1])


def _to_float32(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":  # bfloat16 is the top half of a float32: shift its bits into place
        bits = raw.astype(np.uint32)
        bits <<= 16
        return bits.view(np.float32)
    return raw.astype(np.float32, copy=False)


def _as_matrix(tensor: Any, key: str) -> np.ndarray:
    matrix = np.ascontiguousarray(tensor, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 1:
        raise ModelNotFoundError(f"tensor {key} has shape {matrix.shape}, not (vocab, dim)")
    return matrix


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers (and torch) without their progress bars, logging and warnings on stderr:
    tokneigh's own progress lines are the only ones a build prints."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()


def _name_from_transformers(folder: Path, names: list[str]) -> str:
    """Ask transformers which parameter is the input embedding, without allocating weights."""
    try:
        with _quiet_transformers():
            import torch
            from transformers import AutoConfig, AutoModel

            config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
            with torch.device("meta"):
                model = AutoModel.from_config(config, trust_remote_code=False)
            weight = model.get_input_embeddings().weight
            param = next(n for n, p in model.named_parameters() if p is weight)
    except Exception as exc:  # transformers raises many kinds; all mean "unknown architecture"
        raise ModelNotFoundError(
            f"cannot tell which tensor of {folder} is the input embedding: {_first_line(exc)}"
        ) from exc
    for name in names:
        if name == param or name.endswith("." + param):
            return name
    raise ModelNotFoundError(f"no tensor named like {param!r} in the checkpoint")


def _read_with_transformers(folder: Path, report: Report) -> tuple[np.ndarray, str]:
    report(info("loading the checkpoint with transformers (no safetensors file)"))
    try:
        with _quiet_transformers():
            from transformers import AutoModel

            model = AutoModel.from_pretrained(str(folder), trust_remote_code=False)
    except Exception as exc:  # transformers raises many kinds; all mean "unreadable checkpoint"
        raise ModelNotFoundError(
            f"the checkpoint in {folder} cannot be loaded ({_first_line(exc)})"
        ) from exc
    embedding = model.get_input_embeddings()
    name = next(n for n, p in model.named_parameters() if p is embedding.weight)
    return _as_matrix(embedding.weight.detach().float().numpy(), name), name


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
    with _library_errors(source):  # a truncated or malformed config.json or header
        if source.kind == "gguf":
            from . import gguf as gguf_file

            return gguf_file.output_tensor(source, report)
        files, config_path = _open_checkpoint(source, report)
        layout = _safetensors_layout(files)
        return None if layout is None else _output_tensor_name(config_path.parent, layout[0])


def _safetensors_layout(
    files: _LocalFiles | _HubFiles,
) -> tuple[list[str], Callable[[str], Path | None]] | None:
    """A safetensors checkpoint's tensor names, and where to find the file holding each one."""
    weight_map = _read_index(files, "model.safetensors.index.json")
    if weight_map is not None:
        return list(weight_map), lambda key: files.shard(weight_map[key])
    single = files.get("model.safetensors")
    if single is None:
        return None
    return safetensors_names(single), lambda key: single


def _read_output_embeddings(
    files: _LocalFiles | _HubFiles, folder: Path, report: Report
) -> tuple[np.ndarray, str]:
    """The untied output matrix, from safetensors without torch; TiedEmbeddings if there is none."""
    layout = _safetensors_layout(files)
    if layout is None:
        if any(files.get(n) for n in ("pytorch_model.bin", "pytorch_model.bin.index.json")):
            return _read_output_with_transformers(folder, report)
        raise _missing(files, "no weights (model.safetensors or pytorch_model.bin)")
    names, locate = layout
    key = _output_tensor_name(folder, names)
    path = locate(key)  # only the shard that holds the LM head
    if path is None:
        raise _missing(files, f"the weight file holding {key} is missing")
    return _read_safetensors(path, key, report), key


def _output_tensor_name(folder: Path, names: list[str]) -> str:
    """Which tensor holds the untied output matrix, as transformers would tie or not tie it."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    tie = config.get("tie_word_embeddings") if isinstance(config, dict) else None
    if tie is True:
        raise TiedEmbeddings("its config.json sets tie_word_embeddings")
    key = pick_output_tensor(names)
    if key is not None and tie is None:
        # No explicit setting: transformers falls back on the config class's default (True for
        # GPT-2 and most, False for Llama), and then ignores a saved lm_head.weight when True.
        try:
            with _quiet_transformers():
                from transformers import AutoConfig

                config_ = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
            tie = bool(config_.tie_word_embeddings)
        except Exception:  # an unknown model type: trust the saved tensor
            tie = False
        if tie:
            raise TiedEmbeddings("its config class ties the word embeddings by default")
    if key is None and tie is False:
        key = _output_name_from_transformers(folder, names)  # an unusual head name
    if key is None:
        raise TiedEmbeddings("the checkpoint has no output matrix of its own (no lm_head.weight)")
    return key


def _output_model_on_meta(folder: Path) -> Any:
    """The checkpoint's own architecture (config.architectures), built without weights."""
    with _quiet_transformers():
        import torch
        import transformers
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        names = getattr(config, "architectures", None) or []
        model_class = getattr(transformers, names[0], None) if names else None
        with torch.device("meta"):
            if isinstance(model_class, type) and issubclass(
                model_class, transformers.PreTrainedModel
            ):
                return model_class(config)
            return AutoModelForCausalLM.from_config(config, trust_remote_code=False)


def _output_name_from_transformers(folder: Path, names: list[str]) -> str | None:
    """Ask transformers which parameter is the output embedding; None when it is tied."""
    try:
        model = _output_model_on_meta(folder)
        head = model.get_output_embeddings()
        if head is None or head.weight is model.get_input_embeddings().weight:
            return None
        param = next(n for n, p in model.named_parameters() if p is head.weight)
    except Exception as exc:  # transformers raises many kinds; all mean "unknown architecture"
        raise ModelNotFoundError(
            f"cannot tell which tensor of {folder} is the output embedding: {_first_line(exc)}"
        ) from exc
    for name in names:
        if name == param or name.endswith("." + param):
            return name
    return None


def _read_output_with_transformers(folder: Path, report: Report) -> tuple[np.ndarray, str]:
    report(info("loading the checkpoint with transformers (no safetensors file)"))
    try:
        with _quiet_transformers():
            import transformers
            from transformers import AutoConfig, AutoModelForCausalLM

            config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
            names = getattr(config, "architectures", None) or []
            model_class = getattr(transformers, names[0], None) if names else None
            if not (
                isinstance(model_class, type)
                and issubclass(model_class, transformers.PreTrainedModel)
            ):
                model_class = AutoModelForCausalLM
            model = model_class.from_pretrained(str(folder), trust_remote_code=False)
    except Exception as exc:  # transformers raises many kinds; all mean "unreadable checkpoint"
        raise ModelNotFoundError(
            f"the checkpoint in {folder} cannot be loaded ({_first_line(exc)})"
        ) from exc
    head = model.get_output_embeddings()
    if head is None:
        raise TiedEmbeddings("the model has no LM head")
    if head.weight is model.get_input_embeddings().weight:
        raise TiedEmbeddings("transformers ties its output embeddings to the input embeddings")
    name = next(n for n, p in model.named_parameters() if p is head.weight)
    return _as_matrix(head.weight.detach().float().numpy(), name), name
