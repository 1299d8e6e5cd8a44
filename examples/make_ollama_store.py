"""An Ollama model store holding one GGUF file, laid out as `ollama pull` leaves it: the file
as blobs/sha256-<digest> and a manifest at manifests/registry.ollama.ai/library/NAME/TAG.

    python examples/make_ollama_store.py ./ollama-models ./all-minilm-Q8_0.gguf --name all-minilm
    OLLAMA_MODELS=./ollama-models tokneigh neighbors king --model ollama:all-minilm

No Ollama needed (tokneigh reads the store's files, never a server).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

from _common import wrote

MODEL_LAYER = "application/vnd.ollama.image.model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", help="the store folder (what OLLAMA_MODELS names)")
    parser.add_argument("gguf", help="the GGUF file to put in it")
    parser.add_argument("--name", default="all-minilm", help="NAME[:TAG] (default all-minilm)")
    args = parser.parse_args()
    store, source = Path(args.store), Path(args.gguf)
    name, _, tag = args.name.partition(":")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    blob = store / "blobs" / f"sha256-{digest}"
    manifest = store / "manifests" / "registry.ollama.ai" / "library" / name / (tag or "latest")
    if manifest.exists():
        sys.exit(f"{sys.argv[0]}: error: {manifest} exists")
    blob.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, blob)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    layer = {"mediaType": MODEL_LAYER, "digest": f"sha256:{digest}", "size": blob.stat().st_size}
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [layer]}))
    wrote(blob)
    wrote(manifest)


if __name__ == "__main__":
    main()
