"""A stand-in text embedding for the bundled app: no model, deterministic, 64 numbers.

Each word (letters and digits, case folded) adds +1 or -1 at a position picked by its
hash (feature hashing), so work orders that share words point in similar directions. A
deployment with a real embedding model stores its vectors with `workOrders:setEmbedding`
instead (the index takes any 64-number vector).
"""

import hashlib
import re

DIMENSIONS = 64
_WORD = re.compile(r"[^\W_]+")


def embed(text: str) -> list[float] | None:
    """The text's vector, or None when it has no words (a zero vector has no direction)."""
    vector = [0.0] * DIMENSIONS
    for word in _WORD.findall(text.casefold()):
        digest = hashlib.sha256(word.encode()).digest()
        position = int.from_bytes(digest[:4], "big") % DIMENSIONS
        vector[position] += 1.0 if digest[4] & 1 else -1.0
    return vector if any(vector) else None
