"""shelfscan's benchmark harness: `python -m bench` (see bench/README.md).

It times the naive baseline and the real scanner interleaved in one run, so a
slow spell on this shared 2-core machine hits every variant alike and the
ratios stay valid even when the absolute figures wander.
"""
