"""The ``workbench`` command line: ``main`` (models, recipes, optimize, runs) and one module per other subcommand
(report, search, sensitivity, profile, bundle); ``table`` prints plain-text tables.
"""
