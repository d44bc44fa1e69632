"""A stored rule-set document's size, bounded before it is read (pure: stdlib ``zlib`` only).

Large documents are kept zlib-compressed; a compressed blob of a few hundred KB can inflate to gigabytes
(a decompression bomb), so it is inflated with a ceiling and refused beyond it.
"""

from __future__ import annotations

import zlib

RULES_DOC_INFLATED_MAX = 16_000_000  # bytes: a set at every limit (20,000 keywords of 256 chars) fits


class StoredRulesTooLarge(ValueError):
    """A stored rule-set document inflates beyond :data:`RULES_DOC_INFLATED_MAX`."""


def inflate_rules_doc(packed: bytes, limit: int = RULES_DOC_INFLATED_MAX) -> bytes:
    """``packed`` (zlib) inflated, never producing more than ``limit`` bytes; raises
    :class:`StoredRulesTooLarge` when it would, and ``zlib.error`` when it is not zlib data."""
    inflater = zlib.decompressobj()
    raw = inflater.decompress(packed, limit + 1)  # one byte over tells "too large" without inflating more
    if len(raw) > limit:
        raise StoredRulesTooLarge(f"stored rule set inflates beyond {limit} bytes")
    if not inflater.eof:
        raise zlib.error("stored rule set is truncated")
    return raw
