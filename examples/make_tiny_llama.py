"""A tiny Llama: LlamaForCausalLM with random weights, its own (untied) lm_head, and a
Llama-style SentencePiece BPE tokenizer (byte fallback, <0xNN> byte tokens) trained here on a
few lines of text.

    python examples/make_tiny_llama.py ./tiny-llama

Offline, with only tokneigh's dependencies (tokenizers, transformers, torch). Its similarities
mean nothing; its tokens show how a Llama vocabulary looks (" king", <0xE2> as a byte).
"""

from __future__ import annotations

import argparse
import json

from _common import new_folder, quiet_transformers, wrote

_LLAMA_TEXT = """The king and the queen walked to the market with Mike and Anna.
A banana, an apple and a cherry: fruit for the king, fruit for the queen.
Paris is the capital of France; Berlin is the capital of Germany; Rome of Italy.
The café served crème brûlée while a naïve man read his résumé.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000. Mike likes bananas, Anna likes apples.
"""
LLAMA_BYTE_TOKENS = tuple(f"<0x{b:02X}>" for b in range(256))


def llama_tokenizer(vocab_size: int = 512):
    """A Llama-style SentencePiece BPE tokenizer, trained offline on inline text.

    Laid out like Llama/Mistral's tokenizer.json: ids 0-2 are <unk> <s> </s>, ids 3-258 the
    byte-fallback tokens <0x00>..<0xFF> (plain vocabulary entries, not added tokens), then the
    learned "▁word" pieces; Metaspace pre-tokenizer, Replace+ByteFallback+Fuse+Strip decoder.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    def build(split: bool) -> Tokenizer:
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement="▁", prepend_scheme="first", split=split
        )
        return tok

    # Train split on "▁" so that pieces never span words (as SentencePiece does); serve unsplit
    # as Llama's converted tokenizer.json does (the merges then reproduce the same pieces).
    trained = build(split=True)
    specials = ["<unk>", "<s>", "</s>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials + list(LLAMA_BYTE_TOKENS),
        show_progress=False,
    )
    trained.train_from_iterator([_LLAMA_TEXT], trainer)
    data = json.loads(trained.to_str())
    # Byte tokens are ordinary vocabulary entries in Llama, not added (special) tokens.
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] in specials]
    data["pre_tokenizer"]["split"] = False
    data["decoder"] = json.loads(
        decoders.Sequence(
            [
                decoders.Replace("▁", " "),
                decoders.ByteFallback(),
                decoders.Fuse(),
                decoders.Strip(" ", 1, 0),
            ]
        ).__getstate__()
    )
    tok = Tokenizer.from_str(json.dumps(data))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the checkpoint folder to write (new or empty)")
    parser.add_argument("--dim", type=int, default=32, help="hidden size (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="torch seed (default 0)")
    args = parser.parse_args()
    folder = new_folder(args.folder)
    tokenizer = llama_tokenizer()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    quiet_transformers()
    torch.manual_seed(args.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.dim,
        intermediate_size=2 * args.dim,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,  # lm_head.weight is a matrix of its own
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    wrote(folder)


if __name__ == "__main__":
    main()
