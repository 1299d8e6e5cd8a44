"""First use of a model: fetch its files and extract the input embedding matrix and tokenizer.

The fast path reads only the embedding tensor from a safetensors checkpoint (no torch, no
transformers). Other formats, and architectures whose embedding tensor cannot be named from
the file alone, fall back to transformers. Hub files are looked up in the Hugging Face cache
first, so a model already downloaded there costs no network round trip.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import HubUnavailableError, ModelNotFoundError, TiedEmbeddings, TokneighError
from .models import ModelSource, local_fingerprint

Report = Callable[[str], None]

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


class _LocalFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, name: str) -> Path | None:
        path = self.folder / name
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
            self.report(f"downloading {name} from {self.repo_id}")
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
    TiedEmbeddings when the checkpoint has no output matrix of its own.
    """
    files, config_path = _open_checkpoint(source, report)
    folder = config_path.parent

    # Fingerprint before reading: a file rewritten while we read shows as a change next time.
    fingerprint = files.fingerprint() if source.is_local else {}
    try:
        tokenizer_json = _read_tokenizer(files, folder)
        if embeddings == "output":
            matrix, tensor = _read_output_embeddings(files, folder, report)
        else:
            matrix, tensor = _read_embeddings(files, folder, report)
        tokenizer_json, special_ids = _clean_tokenizer(tokenizer_json)
    except TokneighError:
        raise
    except Exception as exc:  # a truncated or malformed file: safetensors, json, torch, httpx...
        if isinstance(files, _HubFiles):
            raise HubUnavailableError(
                f"model {files.repo_id!r}: fetching or reading its files failed "
                f"({_first_line(exc)})"
            ) from exc
        raise ModelNotFoundError(
            f"{files.describe()}: the checkpoint cannot be read ({_first_line(exc)})"
        ) from exc
    if not source.is_local:
        fingerprint = files.fingerprint()  # the hub revision is known once a file is fetched
    fingerprint["matrix_sha256"] = hashlib.sha256(matrix.tobytes()).hexdigest()
    return Extracted(
        matrix=matrix,
        tokenizer_json=tokenizer_json,
        special_ids=special_ids,
        tensor=tensor,
        resolved=files.describe(),
        fingerprint=fingerprint,
    )


def _missing(files: _LocalFiles | _HubFiles, what: str) -> TokneighError:
    if isinstance(files, _HubFiles):
        return files.not_found(what)
    return ModelNotFoundError(f"{files.describe()}: {what}")


def read_tokenizer(source: ModelSource, report: Report) -> tuple[str, list[int]]:
    """A checkpoint's tokenizer alone (its cleaned tokenizer.json and special ids), without
    reading any weights: what a command that only tokenizes needs."""
    files, config_path = _open_checkpoint(source, report)
    try:
        return _clean_tokenizer(_read_tokenizer(files, config_path.parent))
    except TokneighError:
        raise
    except Exception as exc:  # a truncated or malformed file
        raise _missing(files, f"its tokenizer cannot be read ({_first_line(exc)})") from exc


def _read_tokenizer(files: _LocalFiles | _HubFiles, folder: Path) -> str:
    path = files.get("tokenizer.json")
    if path is not None:
        return path.read_text(encoding="utf-8")
    # Older checkpoints ship vocab.json/merges.txt or a SentencePiece model: let transformers
    # convert them to the fast-tokenizer format once, at build time.
    found = [name for name in _TOKENIZER_SOURCE_FILES if files.get(name) is not None]
    if not found:
        raise _missing(files, "no tokenizer files (tokenizer.json, vocab.json, vocab.txt, ...)")
    from transformers import AutoTokenizer

    try:
        # Never run code shipped with a checkpoint (and never prompt for it either).
        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
        return tokenizer.backend_tokenizer.to_str()
    except Exception as exc:  # transformers raises many kinds; all mean "unusable tokenizer"
        raise _missing(files, f"its tokenizer could not be loaded ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0]}" if lines else exc.__class__.__name__


def _clean_tokenizer(tokenizer_json: str) -> tuple[str, list[int]]:
    """Validate the tokenizer, strip padding/truncation, and list its special token ids."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(tokenizer_json)
    except Exception as exc:
        raise ModelNotFoundError(f"the model's tokenizer.json cannot be parsed ({exc})") from exc
    tokenizer.no_padding()
    tokenizer.no_truncation()
    cleaned = tokenizer.to_str()
    special = sorted(
        int(t["id"]) for t in json.loads(cleaned).get("added_tokens", []) if t.get("special")
    )
    return cleaned, special


def pick_embedding_tensor(names: list[str]) -> str | None:
    """The input-embedding tensor among a checkpoint's tensor names, if the names say so alone."""
    matches = [n for n in names if n.endswith(_EMBEDDING_SUFFIXES) and "position" not in n]
    return matches[0] if len(matches) == 1 else None


def _read_embeddings(
    files: _LocalFiles | _HubFiles, folder: Path, report: Report
) -> tuple[np.ndarray, str]:
    index_path = files.get("model.safetensors.index.json")
    if index_path is not None:
        weight_map: dict[str, str] = json.loads(index_path.read_text())["weight_map"]
        key = pick_embedding_tensor(list(weight_map)) or _name_from_transformers(
            folder, list(weight_map)
        )
        shard = files.get(weight_map[key])  # only the shard that holds the embeddings
        if shard is None:
            raise _missing(files, f"weight file {weight_map[key]} is missing")
        return _read_safetensors(shard, key, report), key

    single = files.get("model.safetensors")
    if single is not None:
        from safetensors import safe_open

        with safe_open(str(single), framework="numpy") as handle:
            names = list(handle.keys())
        key = pick_embedding_tensor(names) or _name_from_transformers(folder, names)
        return _read_safetensors(single, key, report), key

    for name in ("pytorch_model.bin", "pytorch_model.bin.index.json"):
        if files.get(name) is not None:
            if name.endswith(".index.json"):
                shards = json.loads((folder / name).read_text())["weight_map"].values()
                for shard_name in sorted(set(shards)):
                    if files.get(shard_name) is None:
                        raise _missing(files, f"weight file {shard_name} is missing")
            return _read_with_transformers(folder, report)
    raise _missing(files, "no weights (model.safetensors or pytorch_model.bin)")


def _read_safetensors(path: Path, key: str, report: Report) -> np.ndarray:
    from safetensors import safe_open

    report(f"reading {key} from {path.name}")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            tensor = handle.get_tensor(key)
    except (TypeError, ValueError):
        # numpy has no bfloat16: read through torch for such checkpoints.
        with safe_open(str(path), framework="pt") as handle:
            tensor = handle.get_tensor(key).float().numpy()
    return _as_matrix(tensor, key)


def _as_matrix(tensor: Any, key: str) -> np.ndarray:
    matrix = np.ascontiguousarray(tensor, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 1:
        raise ModelNotFoundError(f"tensor {key} has shape {matrix.shape}, not (vocab, dim)")
    return matrix


def _name_from_transformers(folder: Path, names: list[str]) -> str:
    """Ask transformers which parameter is the input embedding, without allocating weights."""
    import torch
    from transformers import AutoConfig, AutoModel

    try:
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
    report("loading the checkpoint with transformers (no safetensors file)")
    from transformers import AutoModel

    try:
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
    files, config_path = _open_checkpoint(source, report)
    try:
        layout = _safetensors_layout(files)
        return None if layout is None else _output_tensor_name(config_path.parent, layout[0])
    except TokneighError:
        raise
    except Exception as exc:  # a truncated or malformed config.json or safetensors header
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise _missing(
            files, f"the checkpoint cannot be read ({exc.__class__.__name__}: {first})"
        ) from exc


def _safetensors_layout(
    files: _LocalFiles | _HubFiles,
) -> tuple[list[str], Callable[[str], Path | None]] | None:
    """A safetensors checkpoint's tensor names, and where to find the file holding each one."""
    index_path = files.get("model.safetensors.index.json")
    if index_path is not None:
        weight_map: dict[str, str] = json.loads(index_path.read_text())["weight_map"]
        return list(weight_map), lambda key: files.get(weight_map[key])
    single = files.get("model.safetensors")
    if single is None:
        return None
    from safetensors import safe_open

    with safe_open(str(single), framework="numpy") as handle:
        names = list(handle.keys())
    return names, lambda key: single


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
        from transformers import AutoConfig

        try:
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
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
    names = getattr(config, "architectures", None) or []
    model_class = getattr(transformers, names[0], None) if names else None
    with torch.device("meta"):
        if isinstance(model_class, type) and issubclass(model_class, transformers.PreTrainedModel):
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
            f"cannot tell which tensor of {folder} is the output embedding: "
            f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        ) from exc
    for name in names:
        if name == param or name.endswith("." + param):
            return name
    return None


def _read_output_with_transformers(folder: Path, report: Report) -> tuple[np.ndarray, str]:
    report("loading the checkpoint with transformers (no safetensors file)")
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        names = getattr(config, "architectures", None) or []
        model_class = getattr(transformers, names[0], None) if names else None
        if not (
            isinstance(model_class, type) and issubclass(model_class, transformers.PreTrainedModel)
        ):
            model_class = AutoModelForCausalLM
        model = model_class.from_pretrained(str(folder), trust_remote_code=False)
    except Exception as exc:  # transformers raises many kinds; all mean "unreadable checkpoint"
        raise ModelNotFoundError(f"the checkpoint in {folder} cannot be loaded ({exc})") from exc
    head = model.get_output_embeddings()
    if head is None:
        raise TiedEmbeddings("the model has no LM head")
    if head.weight is model.get_input_embeddings().weight:
        raise TiedEmbeddings("transformers ties its output embeddings to the input embeddings")
    name = next(n for n, p in model.named_parameters() if p is head.weight)
    return _as_matrix(head.weight.detach().float().numpy(), name), name
