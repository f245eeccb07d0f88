"""Plain-text tables for the command line."""

from __future__ import annotations


def format_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "(no candidates)"
    cols = list(rows[0])
    width = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in cols}
    line = "  ".join(k.ljust(width[k]) for k in cols)
    sep = "  ".join("-" * width[k] for k in cols)
    body = ["  ".join(str(r[k]).ljust(width[k]) for k in cols) for r in rows]
    return "\n".join([line, sep, *body])
