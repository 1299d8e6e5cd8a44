"""The cache: one owner of its entries, end to end. ``layout`` names the folders and files,
``entries`` opens (and builds, ``build``) an entry under the per-model lock (``locks``),
``derived`` keeps what metrics and the all-pairs pass compute, ``listing`` lists and removes
entries. Crash-safe: an entry appears whole, by rename, or not at all.
"""
