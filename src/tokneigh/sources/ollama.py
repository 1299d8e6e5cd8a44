"""``ollama:NAME[:TAG]``: a model pulled with Ollama, found in its local store.

Ollama keeps each model as a JSON manifest, ``manifests/<registry>/<owner>/<name>/<tag>``,
whose layer of media type ``application/vnd.ollama.image.model`` names the GGUF file by its
digest, stored as ``blobs/sha256-<hex>``. The store is ``$OLLAMA_MODELS``, else
``~/.ollama/models``. Only files are read: no Ollama server needs to run.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import ModelNotFoundError, OllamaNameError
from .local_files import NotAFile, check_regular, open_regular

PREFIX = "ollama:"
REGISTRY = "registry.ollama.ai"
DEFAULT_TAG = "latest"
MODEL_LAYER = "application/vnd.ollama.image.model"
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
_LISTED = 12  # names an error message lists at most
# A manifest lists a handful of layers (model, template, license, parameters): under 2 KB.
# Anything past this is not one, and is not read into memory whole.
_MAX_MANIFEST = 1 << 20


def store() -> Path:
    env = os.environ.get("OLLAMA_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".ollama" / "models"


def blob_path(spec: str) -> tuple[str, Path]:
    """The shown name (``ollama:NAME:TAG``) and the GGUF blob of an ``ollama:`` spec."""
    name, tag = _split(spec)
    root = store()
    parts = name.split("/")
    # "name" is library/name; "owner/name" is on Ollama's registry; "host/owner/name" (a
    # first part with a dot, like hf.co) is another registry's.
    host = parts.pop(0) if len(parts) == 3 else REGISTRY
    if len(parts) == 1:
        parts.insert(0, "library")
    manifest = root / "manifests" / host / parts[0] / parts[1] / tag
    shown = f"{PREFIX}{name}:{tag}"
    data = _manifest(shown, manifest, root)
    layers = data.get("layers") if isinstance(data, dict) else None
    digests = [
        layer.get("digest")
        for layer in (layers if isinstance(layers, list) else [])
        if isinstance(layer, dict) and layer.get("mediaType") == MODEL_LAYER
    ]
    if not digests:
        raise ModelNotFoundError(
            f"model {shown}: its Ollama manifest {manifest} names no model file"
        )
    match = _DIGEST.match(digests[0]) if isinstance(digests[0], str) else None
    if match is None:
        raise ModelNotFoundError(
            f"model {shown}: its Ollama manifest gives the model file a malformed digest"
        )
    blob = root / "blobs" / f"sha256-{match.group(1)}"
    try:
        check_regular(blob)
    except FileNotFoundError:
        raise ModelNotFoundError(
            f"model {shown}: its model file {blob} is missing from the Ollama store"
        ) from None
    except NotAFile as exc:
        raise ModelNotFoundError(
            f"model {shown}: its model file {blob} is {exc.kind}, not a file"
        ) from None
    except OSError as exc:
        raise ModelNotFoundError(
            f"model {shown}: its model file {blob} cannot be read ({exc.strerror or exc})"
        ) from None
    return shown, blob.resolve()


def _manifest(shown: str, manifest: Path, root: Path) -> object:
    """A manifest's JSON. Opened only if it is a regular file (a FIFO is never waited on),
    read up to a bound, parsed with deep nesting refused."""
    try:
        with open_regular(manifest) as handle:
            raw = handle.read(_MAX_MANIFEST + 1)
    except FileNotFoundError:
        raise ModelNotFoundError(_not_found(shown, root)) from None
    except NotAFile as exc:
        raise ModelNotFoundError(
            f"model {shown}: its Ollama manifest {manifest} is {exc.kind}, not a file"
        ) from None
    except OSError as exc:
        raise ModelNotFoundError(
            f"model {shown}: its Ollama manifest {manifest} cannot be read "
            f"({exc.__class__.__name__})"
        ) from exc
    if len(raw) > _MAX_MANIFEST:
        raise ModelNotFoundError(
            f"model {shown}: its Ollama manifest {manifest} is larger than any Ollama "
            f"manifest (over {_MAX_MANIFEST:,} bytes)"
        )
    try:
        return json.loads(raw)
    except RecursionError:  # json recurses once per level: "[[[[..." of any depth
        raise ModelNotFoundError(
            f"model {shown}: its Ollama manifest {manifest} is JSON nested too deep to be "
            "a manifest"
        ) from None
    except ValueError as exc:  # not JSON (UnicodeDecodeError included)
        raise ModelNotFoundError(
            f"model {shown}: its Ollama manifest {manifest} cannot be read "
            f"({exc.__class__.__name__})"
        ) from exc


def _split(spec: str) -> tuple[str, str]:
    body = spec[len(PREFIX) :]
    name, _, tag = body.partition(":")
    tag = tag or DEFAULT_TAG
    parts = name.split("/")
    if not (1 <= len(parts) <= 3 and all(_PART.match(p) for p in [*parts, tag])) or ".." in body:
        raise OllamaNameError(
            f"{spec!r} is not an Ollama model name (like 'ollama:all-minilm' or "
            "'ollama:llama3.2:1b')"
        )
    return name, tag


def names(root: Path) -> list[str]:
    """The models the store holds, as ``ollama:`` takes them (``name:tag``, ``owner/name:tag``)."""
    base = root / "manifests"
    found = []
    try:
        manifests = sorted(p for p in base.glob("*/*/*/*") if p.is_file())
    except OSError:
        return []
    for path in manifests:
        host, owner, name, tag = path.relative_to(base).parts
        model = name if (host, owner) == (REGISTRY, "library") else f"{owner}/{name}"
        if host != REGISTRY:
            model = f"{host}/{model}"
        found.append(f"{model}:{tag}")
    return found


def _not_found(shown: str, root: Path) -> str:
    """Why an ``ollama:`` name is not found, with the names the store does hold."""
    if not (root / "manifests").is_dir():
        return f"model {shown}: there is no Ollama store at {root} (OLLAMA_MODELS names another)"
    held = names(root)
    if not held:
        return f"model {shown} is not in the Ollama store at {root}, which holds no models"
    listed = ", ".join(held[:_LISTED])
    more = f", and {len(held) - _LISTED} more" if len(held) > _LISTED else ""
    return f"model {shown} is not in the Ollama store at {root}, which holds: {listed}{more}"
