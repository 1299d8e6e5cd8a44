"""The vector space, numpy only: the similarity core (``core``: normalize, exact top-k, blocked
products; it imports nothing of tokneigh), the exact all-pairs pass (``allpairs``) and the
corrected metrics (``metrics``: centered, ABTT, CSLS). Nothing here knows a tokenizer.
"""
