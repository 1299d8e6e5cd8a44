"""A GGUF file (the format llama.cpp, Ollama and LM Studio run) from a checkpoint folder:
its tokenizer as GGUF metadata and its embedding matrix as token_embd.weight (and an untied
lm_head as output.weight), laid out as llama.cpp's convert_hf_to_gguf.py lays them out.

    python examples/make_gguf.py ./all-minilm-Q8_0.gguf --from "$MINILM" --type Q8_0

The tokenizer.json decides the GGUF tokenizer: WordPiece -> bert (llama.cpp's "phantom space"
form: "▁word", "ing" for "##ing"), BPE with byte fallback -> llama (SentencePiece-style),
other BPE -> gpt2 (byte-level). Offline, with only tokneigh's dependencies (gguf, safetensors).
This is a converter for the examples, not for production: llama.cpp's is the real one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from _common import wrote

NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6  # llama.cpp's token types
INPUT_NAMES = ("word_embeddings.weight", "wte.weight", "embed_tokens.weight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", help="the GGUF file to write (must not exist)")
    parser.add_argument("--from", dest="folder", required=True, help="a checkpoint folder")
    parser.add_argument(
        "--type", default="F32", help="storage type: F32, F16, Q8_0, Q4_0, ... (default F32)"
    )
    args = parser.parse_args()
    path, folder = Path(args.file), Path(args.folder)
    if path.exists():
        sys.exit(f"{sys.argv[0]}: error: {path} exists")
    tensors = _tensors(folder)
    names = [n for n in tensors if n.endswith(INPUT_NAMES)]
    if not names:
        sys.exit(f"{sys.argv[0]}: error: no tensor named *{'/'.join(INPUT_NAMES)} in {folder}")
    name = names[0]
    vocab = _vocab(json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")))
    output = tensors.get("lm_head.weight")
    _write(path, vocab, tensors[name], args.type, output)
    wrote(path)


def _tensors(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return {k: v.astype(np.float32) for k, v in load_file(folder / "model.safetensors").items()}


def _vocab(data: dict) -> dict:
    """The GGUF tokenizer fields of a tokenizer.json: tokens by id, their types, and the
    model's merges or scores."""
    model = data["model"]
    vocab = dict(model["vocab"])
    added = {t["id"]: t for t in data.get("added_tokens", [])}
    for token_id, token in added.items():
        vocab.setdefault(token["content"], token_id)
    tokens = [""] * (max(vocab.values()) + 1)
    for token, token_id in vocab.items():
        tokens[token_id] = token
    special = {i for i, t in added.items() if t.get("special")}
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    if model["type"] == "WordPiece":
        def phantom(token: str) -> str:
            if token.startswith("[") and token.endswith("]"):
                return token
            return token[2:] if token.startswith("##") else "\u2581" + token

        return {
            "arch": "bert", "model": "bert", "tokens": [phantom(t) for t in tokens],
            "types": [CONTROL if i in special else NORMAL for i in range(len(tokens))],
            "unk": tokens.index("[UNK]"),
        }
    if model.get("byte_fallback"):
        types, scores = [], []
        for i, token in enumerate(tokens):
            if token == model.get("unk_token"):
                types.append(UNKNOWN)
            elif i in special:
                types.append(CONTROL)
            elif token.startswith("<0x") and token.endswith(">") and len(token) == 6:
                types.append(BYTE)
            else:
                types.append(NORMAL)
            # SentencePiece's scores rank the pieces: here by id, as BPE learned them.
            scores.append(-float(i) if types[-1] == NORMAL else 0.0)
        out = {"arch": "llama", "model": "llama", "tokens": tokens, "types": types,
               "scores": scores}
        if model.get("unk_token") in vocab:
            out["unk"] = vocab[model["unk_token"]]
        return out
    return {
        "arch": "gpt2", "model": "gpt2", "tokens": tokens, "merges": merges,
        "types": [CONTROL if i in special else NORMAL for i in range(len(tokens))],
    }


def _write(
    path: Path, vocab: dict, matrix: np.ndarray, qtype: str, output: np.ndarray | None
) -> None:
    import gguf

    kind = getattr(gguf.GGMLQuantizationType, qtype, None)
    if kind is None:
        sys.exit(f"{sys.argv[0]}: error: unknown type {qtype} (F32, F16, Q8_0, Q4_0, ...)")
    writer = gguf.GGUFWriter(str(path), vocab["arch"])
    writer.add_name(path.stem)
    writer.add_tokenizer_model(vocab["model"])
    writer.add_tokenizer_pre("gpt2" if vocab["model"] == "gpt2" else "default")
    writer.add_token_list(vocab["tokens"])
    writer.add_token_types(vocab["types"])
    if "scores" in vocab:
        writer.add_token_scores(vocab["scores"])
    if vocab.get("merges"):
        writer.add_token_merges(vocab["merges"])
    if "unk" in vocab:
        writer.add_unk_token_id(vocab["unk"])
    writer.add_embedding_length(int(matrix.shape[1]))
    for name, tensor in (("token_embd.weight", matrix), ("output.weight", output)):
        if tensor is None:
            continue
        tensor = np.ascontiguousarray(tensor, dtype=np.float32)
        if qtype == "F32":
            writer.add_tensor(name, tensor)
        elif qtype == "F16":
            writer.add_tensor(name, tensor.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(tensor, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
