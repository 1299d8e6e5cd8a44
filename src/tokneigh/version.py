"""The package's version, in a module of its own: the store records it in every entry, and
nothing low in the layers may import the package root (which names every public type)."""

__version__ = "0.1.0"
