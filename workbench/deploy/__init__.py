"""Device bundles: a candidate's model with a standalone runner for the target device, and the import of the
results measured there.
"""
