"""The reliability and security suite: storms, faults, races, fuzz and load against the local stack.

``python -m reliability`` (``make reliability``) runs every registered scenario and writes
``benchmarks/reliability.json`` and the table in ``docs/reliability.md``; ``--short`` is the CI version. A scenario is one
function registered with ``reliability.registry.scenario``.
"""
