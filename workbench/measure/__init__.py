"""Measuring candidates: evaluation over a split, latency benchmarks (side by side), kernel profiles and the
roofline, why a candidate is not faster, and per-layer sensitivity.
"""
