"""Benchmarks: each module prints a table and can write JSON (``--json PATH``).

Figures are ratios against a baseline measured in the same run, and medians of repeats: the
machine is shared and noisy, absolute numbers move, ratios much less.
"""
