"""What is computed from one loaded space (two, for ``diff``): neighbour rankings and the filter
policy, comparisons, expressions (analogies), the whole vocabulary (graph, hubness, stats),
under-trained tokens (``scan``), neighbourhood differences, the loop-vs-vectorized check, the
PCA map. Each reads a ``view.SpaceView`` (never ``api`` or ``store``) and returns results.
"""
