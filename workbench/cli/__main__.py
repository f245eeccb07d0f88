"""``python -m workbench.cli``: the same as the ``workbench`` command."""

from .main import main

if __name__ == "__main__":
    raise SystemExit(main())
