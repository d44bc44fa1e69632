"""A/B variants: sticky weighted assignment and the statistics the KPI report shows per variant.

Pure functions (no I/O). A rule reply or a campaign lists weighted variants; ``assign_variant`` picks one
per person from a hash of (experiment, person), so the same person always gets the same variant, on every
container and in ``wxloop rules test``, and adding a new experiment never reshuffles another one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054


def assign_variant(person: str, experiment: str, weights: Mapping[str, float] | Sequence[tuple[str, float]]
                   ) -> str:
    """The variant ``person`` gets in ``experiment``: stable for the same inputs, each variant chosen with
    probability weight / sum(weights). Variants are taken in the order given. Raises ValueError when there
    is no variant, a weight is negative or not finite, or all weights are zero."""
    items = list(weights.items()) if isinstance(weights, Mapping) else list(weights)
    if not items:
        raise ValueError(f"experiment {experiment!r} lists no variants")
    if any(not math.isfinite(w) or w < 0 for _, w in items):
        raise ValueError(f"experiment {experiment!r}: weights must be finite and >= 0")
    total = sum(w for _, w in items)
    if total <= 0:
        raise ValueError(f"experiment {experiment!r}: weights sum to 0")
    digest = hashlib.sha256(f"{experiment}\x1f{person}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * total  # uniform in [0, total)
    acc = 0.0
    for name, weight in items:
        acc += weight
        if point < acc:
            return name
    return next(name for name, w in reversed(items) if w > 0)  # float rounding at the very top


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 0) when there are no trials."""
    if trials <= 0:
        return 0.0, 0.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Comparison:
    z: float
    p_value: float
    significant: bool


def two_proportion_test(s1: int, n1: int, s2: int, n2: int, alpha: float = 0.05) -> Comparison:
    """Two-sided pooled z-test that two conversion rates differ. No data or no variance: z 0, p 1."""
    if n1 <= 0 or n2 <= 0:
        return Comparison(0.0, 1.0, False)
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return Comparison(0.0, 1.0, False)
    z = (s2 / n2 - s1 / n1) / se
    p_value = math.erfc(abs(z) / math.sqrt(2))
    return Comparison(z, p_value, p_value < alpha)
