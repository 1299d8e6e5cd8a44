"""The seed article's vectorized method, end to end: what tokneigh is measured against.

    python benchmarks/seed_script.py CHECKPOINT_DIR Mike

Load the model with transformers, take its input embedding matrix (``wte``), normalize the
rows, score every token against the word with one matrix product, sort, print the top 20.
Everything happens on every run: there is no cache.
"""

from __future__ import annotations

import sys

import torch
from transformers import AutoTokenizer, GPT2Model


def main() -> None:
    folder, word = sys.argv[1], sys.argv[2]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = GPT2Model.from_pretrained(folder)
    embeddings = model.wte.weight.detach()
    normalized = embeddings / embeddings.norm(dim=1, keepdim=True)
    token_id = tokenizer.encode(word)[0]
    similarities = normalized @ normalized[token_id]
    best = torch.argsort(similarities, descending=True)[:20]
    for rank, i in enumerate(best.tolist(), start=1):
        print(f"{rank:>4}  {tokenizer.decode([i])!r:<20} {i:>6}  {similarities[i].item():.3f}")


if __name__ == "__main__":
    main()
