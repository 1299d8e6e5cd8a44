"""``tokneigh serve``: the ASGI app (``app``), and the thread that does its model work
(``worker``). The page itself is in ``static/``."""
