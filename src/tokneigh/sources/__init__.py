"""What a ``--model`` names: a hub id, a local folder, a GGUF file or an Ollama model
(``models.resolve`` -> ``ModelSource``), and how titles show it.
"""
