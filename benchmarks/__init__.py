"""Benchmarks of steadybot; each sub-package is one reproducible measurement."""
