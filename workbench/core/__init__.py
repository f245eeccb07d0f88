"""Foundations every part uses: errors, pass configs, the run context (progress, cancel, timing hook), the
environment fingerprint and artifacts (a PyTorch module or an ONNX file, and how to run it).
"""
