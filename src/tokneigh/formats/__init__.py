"""Checkpoint readers: what a model's files hold, turned into one ``extracted.Extracted`` (the
embedding matrix, the tokenizer, a fingerprint). ``extract`` dispatches: Hugging Face
checkpoints (safetensors, else transformers), GGUF files (with their tokenizer rebuilt);
``binary`` is what the binary readers share.
"""
