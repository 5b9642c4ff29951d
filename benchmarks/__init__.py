"""Benchmarks of decode-omics (not part of the unit tests). See ``python -m benchmarks --help``."""
