"""Tokenizers and token display: ``codec.TokenCodec`` (encode, show, special tokens), its fast
index (``index``), GPT-2's byte-level BPE (``bpe``), and the display rules (``display``).
"""
