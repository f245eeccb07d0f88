"""Table rows for LM candidates: perplexity and tokens/s instead of accuracy and batch latency."""

from __future__ import annotations

from typing import Any

__all__ = ["lm_candidate_rows"]


def _f(v: Any, spec: str, scale: float = 1.0) -> str:
    return "-" if v is None else format(v * scale, spec)


def lm_candidate_rows(cands) -> list[dict[str, str]]:
    """One row per candidate, the columns ``workbench optimize`` / ``workbench runs`` print for causal LMs.

    >>> lm_candidate_rows(store.candidates("smollm2"))[0]["ppl [95% CI]"]   # doctest: +SKIP
    '16.02 [14.90, 17.31]'
    """
    base = next((c.metrics for c in cands if c.recipe_name == "baseline" and c.metrics.get("perplexity")), None)
    rows = []
    for c in cands:
        m = c.metrics
        ppl, ci = m.get("perplexity"), m.get("perplexity_ci")
        rise = None if ppl is None or not base else ppl / base["perplexity"] - 1
        rows.append(
            {
                "id": c.id,
                "recipe": c.recipe_name,
                "runtime": c.runtime,
                "status": c.status,
                "tok/s": _f(m.get("tokens_per_s"), ".1f"),
                "speedup": _f(m.get("speedup"), ".2f") + ("x" if m.get("speedup") else ""),
                "prefill ms": _f(m.get("prefill_ms"), ".1f"),
                "ppl [95% CI]": "-"
                if ppl is None
                else (f"{ppl:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{ppl:.2f}"),
                "ppl +%": _f(rise, "+.1f", 100),
                "size MB": _f(m.get("size_bytes"), ".1f", 1e-6),
                "mem MB": _f(m.get("peak_mem_bytes"), ".1f", 1e-6),
                "note": (c.error or "")[:60],
            }
        )
    return rows
