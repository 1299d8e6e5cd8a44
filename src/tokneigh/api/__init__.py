"""The Python API: ``load`` and ``load_vocabulary`` (``loading``), ``Embeddings`` (a thin class
whose methods call ``tokneigh.analyses``; it reads and writes the cache entry's derived arrays)
and ``Vocabulary``. Everything public is importable from ``tokneigh``.
"""
