"""Benchmarks of rngstate against raw jax.random, NumPy and PyTorch (``make bench``).

Kept free of imports so that ``python -m benchmarks.probe import ...`` measures a clean import.
"""
