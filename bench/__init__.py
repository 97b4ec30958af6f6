"""Benchmarks that print figures (not tests). Run each from the project root as a module,
e.g. ``python -m bench.acd_routing``, so bench/ never stands in for a package."""
