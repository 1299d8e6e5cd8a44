"""Presentation for the command line: ``render.emit`` (Rich tables, JSON, TSV on stdout),
figures (``plot``) and neighbour-graph files (``graphfile``).
"""
