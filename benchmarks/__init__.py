"""papers benchmarks: the speed, memory and quality measurements behind docs/performance.md
and docs/quality.md (`papers bench`, `python -m benchmarks.<tool>`).

A package of the distribution (pyproject.toml) so that `papers bench` imports it like any
other package, without editing ``sys.path``. It sits beside ``service``, not below it:
benchmarks import ``indexer`` and drive the service as a program (`papers serve`,
`papers eval`), never by importing ``service`` (tests/test_layering.py).
"""
