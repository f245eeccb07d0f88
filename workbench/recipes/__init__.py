"""Recipes: named, ordered chains of passes (``registry``, where every built-in recipe is registered) and the
composer that builds one from panel settings (``compose``).
"""
