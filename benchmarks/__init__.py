"""trine's performance harness: ``python -m benchmarks [NAME ...]``.

Each ``bench_<name>.py`` module in this package defines ``CASES``, a list of
:class:`benchmarks._harness.Case`. A case runs trine and the hand-written Trio
equivalent (and peer libraries, where installed) in the same process,
interleaved, and prints medians and the ratio to the hand-written baseline.
"""
