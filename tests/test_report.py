"""The papermill report: real kernel, real run store, real nbconvert HTML, real headless Chromium."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

import workbench as wb
from workbench import RunStore
from workbench.cli.report import parse_value
from workbench.core.env import fingerprint
from workbench.core.errors import ConfigError
from workbench.measure.noise import machine_speed
from workbench.report.notebook import DEFAULT_TEMPLATE, run_report, template_parameters
from workbench.tasks.budget import Budget, best_within

RECIPES = ["ort-fp32", "ort-int8-dynamic"]
SECTIONS = ("Optimization report", "Candidates", "Recipes", "Charts", "Budget verdict", "Environment")


def _small(store: Path) -> dict:
    # digits-cnn, 200 eval images, 2 + 5 timing runs: the whole report runs in about 10 s
    return {
        "recipes": RECIPES,
        "n_eval": 200,
        "bench_warmup": 2,
        "bench_runs": 5,
        "threads": 2,
        "store": str(store),
        "reuse": False,
    }


#: the module report's progress (a step per cell, the section as the message)
REPORT_CTX = wb.RunContext()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    res = run_report("digits-cnn", _small(d / "runs.sqlite"), d / "digits.html", cwd=d, ctx=REPORT_CTX)
    assert res.ok, f"{res.failed_cell}: {res.error}"
    # the candidates of this run (later tests add more to the same store)
    return res, d / "runs.sqlite", RunStore(d / "runs.sqlite").candidates(include_intermediate=False)


def _text(html: str) -> str:
    """Visible text of the page, roughly: tags dropped, entities for the few characters we look for."""
    text = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'")
    return re.sub(r"\s+", " ", text)


def test_report_has_every_section_and_no_cdn_script(report):
    res, _, _ = report
    html = res.html_path.read_text()
    text = _text(html)
    for heading in SECTIONS:
        assert re.search(rf"<h[12][^>]*>\s*{heading}", html), heading
    for recipe in ["baseline", *RECIPES]:
        assert recipe in text
    # each candidate's recipe, step by step
    assert "onnx-export(" in text and "dynamic-int8(per_channel=True" in text
    # reads offline: no script is loaded from anywhere, images are inline
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<img[^>]+src=\"http", html)
    # the executed notebook sits beside the HTML
    assert res.notebook_path.exists() and res.notebook_path.suffix == ".ipynb"


def test_report_says_how_far_the_machine_moved_while_timing(report):
    res, _, cands = report
    text = _text(res.html_path.read_text())
    # no canned claim about run-to-run noise: what the kernel read between these candidates' rounds
    assert "5–10 %" not in text and "run-to-run noise" not in text
    moved = machine_speed([c.metrics for c in cands if c.ok])
    assert moved is not None and moved["timings"] == len([c for c in cands if c.ok])
    assert f"While these {moved['timings']} latencies were timed" in text
    assert f"moved by {moved['moved_pct']:.0f} %" in text
    noisy = [c for c in cands if c.ok and c.get("noisy")]
    assert (f"{len(noisy)} of" if noisy else "None of the") in text
    # each latency at the machine's usual speed too, in the table and explained under it
    assert (
        "p50 at usual speed (ms)" in text
        and "p50 at usual speed is the baseline's usual p50 (the mean of the middle half" in text
    )
    for c in cands:
        if c.ok:
            assert f"{c.get('p50_usual_ms'):.2f}" in text


def test_report_embeds_chart_images(report):
    res, _, _ = report
    pngs = re.findall(r'<img[^>]+src="data:image/png;base64,([^"]+)"', res.html_path.read_text())
    assert len(pngs) == 2  # the trade-off scatter and the size bars
    for b64 in pngs:
        data = base64.b64decode(b64)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width = int.from_bytes(data[16:20], "big")
        assert width > 400  # a real chart rendered at scale 2, not an empty placeholder


def test_report_verdict_names_the_best_candidate_within_budget(report):
    res, _, cands = report
    text = _text(res.html_path.read_text())
    best = best_within(cands, Budget(max_latency_ms=5, max_size_mb=25, max_accuracy_drop=0.01))
    assert best is not None
    assert (
        f"The most accurate candidate within 5 ms and 25 MB, losing at most 1 point of accuracy: "
        f"{best.recipe_name} ( {best.id} )" in text
    )
    assert f"accuracy {best.get('accuracy'):.2%}" in text


def test_report_verdict_when_nothing_fits(report, tmp_path):
    # a 1 microsecond budget: nothing fits, the report says so and names the closest candidate
    # (same store and settings as the first report, reuse on: nothing is measured again)
    _, store_path, cands = report
    params = {**_small(store_path), "recipes": ["ort-fp32"], "max_latency_ms": 0.001, "reuse": True}
    res = run_report("digits-cnn", params, tmp_path / "tight.html", cwd=tmp_path)
    assert res.ok, res.error
    text = _text(res.html_path.read_text())
    assert "No candidate fits within 0.001 ms and 25 MB" in text
    m = re.search(r"The closest is (\S+) \( (\w+) \): latency ([\d.]+) ms exceeds 0.001 ms", text)
    assert m, text
    # only the latency limit is broken: the closest is the faster of the two reused candidates, at its p50
    first = {c.recipe_name: c for c in cands}
    closest = min(first["baseline"], first["ort-fp32"], key=lambda c: c.get("p50_ms"))
    assert (m.group(1), m.group(2)) == (closest.recipe_name, closest.id)
    assert float(m.group(3)) == pytest.approx(closest.get("p50_ms"), rel=0.005)
    assert "reused, measured" in text


def test_report_environment_fingerprint(report):
    res, store_path, cands = report
    text = _text(res.html_path.read_text())
    fp = fingerprint(2)
    assert fp["cpu"] in text
    assert f"{fp['machine']}, {fp['cores']} cores" in text
    assert fp["libraries"]["torch"] in text and fp["libraries"]["onnxruntime"] in text
    assert str(store_path) in text
    assert len(cands) == 3
    for c in cands:
        assert f"{c.recipe_name}={c.id}" in text


def test_report_says_what_the_cpu_means_and_which_latencies_are_noisy(report):
    from workbench.recipes.advice import cpu_summary

    res, _, cands = report
    text = _text(res.html_path.read_text())
    assert "what this CPU means" in text and cpu_summary() in text
    assert "thread settings" in text and "ort_spinning False" in text
    noisy = [f"{c.recipe_name}={c.id}" for c in cands if c.get("noisy")]
    assert ("noisy latencies " + (", ".join(noisy) if noisy else "none")) in text


def test_report_progress_is_a_step_per_cell_with_its_section(report):
    events = [e for e in REPORT_CTX.events if e.stage == "report digits-cnn"]
    assert events and events[0].total and events[0].done == 0
    total = events[0].total
    assert events[-1].done == total  # every cell ran and was counted once
    messages = {e.message for e in events if e.message}
    assert any("Verdict" in m or "verdict" in m for m in messages), messages


def test_rerun_reproduces_accuracy_exactly(report, tmp_path):
    """Same parameters, reuse off: every candidate is built and measured again, with the same accuracy."""
    res, store_path, cands = report
    first = {c.recipe_name: c for c in cands}
    again = run_report("digits-cnn", _small(store_path), tmp_path / "again.html", cwd=tmp_path)
    assert again.ok, again.error
    runs = RunStore(store_path).candidates(include_intermediate=False)
    second = {c.recipe_name: c for c in runs if c.id not in {f.id for f in first.values()}}
    assert set(second) == set(first) == {"baseline", *RECIPES}
    for name, c in first.items():
        assert second[name].id != c.id  # measured again, not reused
        assert second[name].get("accuracy") == c.get("accuracy"), name
    # the tables in both reports print the same accuracies
    acc = re.compile(r"\d+\.\d\d%")
    tables = [acc.findall(_text(p.read_text()).split("Recipes")[0]) for p in (res.html_path, again.html_path)]
    assert tables[0] == tables[1] and len(tables[0]) >= 3


def test_failing_cell_gives_a_report_and_a_nonzero_exit(tmp_path, capsys):
    from workbench.cli.main import main

    out = tmp_path / "failed.html"
    rc = main(
        [
            "--store",
            str(tmp_path / "runs.sqlite"),
            "report",
            "digits-cnn",
            "-p",
            "recipes",
            "no-such-recipe",
            "-p",
            "n_eval",
            "50",
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert "report failed at In [" in err and "section 'Candidates'" in err and "UnknownNameError" in err
    text = _text(out.read_text())
    assert "Report failed" in text
    assert re.search(r"Failed cell: In \[\d+\] \(cell \d+\) in section 'Candidates': cands = wb.optimize", text)
    assert "UnknownNameError: Unknown recipe 'no-such-recipe'" in text
    assert "Known recipes:" in text and "ort-int8-dynamic" in text
    assert out.with_suffix(".ipynb").exists()


def test_failing_cell_result_fields(tmp_path):
    res = run_report(
        "digits-cnn",
        {"n_eval": 50, "max_size_mb": -1.0, "store": str(tmp_path / "r.sqlite")},
        tmp_path / "bad.html",
        cwd=tmp_path,
    )
    assert not res.ok
    assert res.error.startswith("ConfigError:") and "max_size_mb" in res.error
    assert "section 'Optimization report'" in res.failed_cell and "import datetime" in res.failed_cell
    assert res.html_path.exists()


def test_bad_arguments_fail_before_any_kernel_starts(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown report parameter 'n_evals'\. Valid parameters: .*n_eval"):
        run_report("digits-cnn", {"n_evals": 5}, tmp_path / "x.html")
    with pytest.raises(ConfigError, match="must end in .html"):
        run_report("digits-cnn", {}, tmp_path / "x.pdf")
    with pytest.raises(ConfigError, match="template"):
        run_report("digits-cnn", {}, tmp_path / "x.html", template=tmp_path / "missing.ipynb")
    assert not (tmp_path / "x.ipynb").exists()


def test_template_parameters_are_typed_and_explained():
    params = template_parameters()
    assert {
        "model",
        "recipes",
        "max_latency_ms",
        "max_size_mb",
        "max_accuracy_drop",
        "threads",
        "seed",
        "n_eval",
        "bench_warmup",
        "bench_runs",
        "store",
    } <= set(params)
    for name, p in params.items():
        assert p["type"] not in ("None", ""), name
        assert len(p["help"]) > 10, name
    import nbformat

    nb = nbformat.read(DEFAULT_TEMPLATE, as_version=4)
    assert nb.cells[0].metadata["tags"] == ["parameters"]
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("200", 200),
        ("0.5", 0.5),
        ("null", None),
        ("true", True),
        ("ort-fp32,bf16", "ort-fp32,bf16"),
        ('["a", "b"]', ["a", "b"]),
        ("None", None),
    ],
    ids=str,
)
def test_cli_values_parse(text, value):
    assert parse_value(text) == value


def test_report_in_headless_chromium(report, launch_browser, test_artifacts):
    res, _, _ = report
    browser = launch_browser(headless=True)  # system chromium and its flags: tests/conftest.py
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        remote: list[str] = []
        # the report must read offline: refuse (and remember) anything that is not the file itself
        page.route(re.compile(r"^(?!file:|data:).*"), lambda route: (remote.append(route.request.url), route.abort()))
        page.goto(res.html_path.as_uri(), wait_until="load")
        for heading in SECTIONS:
            assert page.get_by_role("heading", name=heading).first.is_visible(), heading
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 2 and all(w > 400 for w in widths), widths
        assert page.get_by_text("The most accurate candidate within 5 ms and 25 MB").is_visible()
        assert page.locator("table").count() >= 4  # parameters, candidates, verdict, environment
        assert remote == []
        page.screenshot(path=str(test_artifacts / "report.png"), full_page=True)
    finally:
        browser.close()
    assert (test_artifacts / "report.png").stat().st_size > 10_000


# ---- a causal LM, and a store with search trials ----------------------------------------------------------
def _page_text(path: Path) -> str:
    """Visible text of a report, entities decoded, whitespace collapsed (for sentences that span tags)."""
    import html

    return re.sub(r"\s+", " ", html.unescape(_text(path.read_text())))


def _pngs(path: Path) -> int:
    return len(re.findall(r'<img[^>]+src="data:image/png;base64,', path.read_text()))


def test_lm_report_shows_perplexity_tokens_per_s_and_samples(tmp_path):
    from workbench.lm import PROMPTS
    from workbench.lm.task import CausalLM
    from workbench.lm.testing import tiny_lm_folder

    folder = str(tiny_lm_folder())
    budget = {"max_latency_ms": None, "max_size_mb": None, "min_tokens_per_s": 1.0, "max_perplexity_increase": 0.25}
    params = {
        "recipes": ["lm-bf16", "lm-int8"],
        "n_eval": 4,
        "load_options": {"seq_len": 64, "prompt_len": 16, "decode_tokens": 8, "sample_tokens": 6},
        "bench_warmup": 1,
        "bench_runs": 8,
        "threads": 1,
        "store": str(tmp_path / "runs.sqlite"),
        **budget,
    }
    res = run_report(folder, params, tmp_path / "lm.html", cwd=tmp_path)
    assert res.ok, f"{res.failed_cell}: {res.error}"
    html_text = res.html_path.read_text()
    for heading in (*SECTIONS, "Search"):
        assert re.search(rf"<h[12][^>]*>\s*{heading}", html_text), heading
    text = _page_text(res.html_path)
    cands = RunStore(tmp_path / "runs.sqlite").candidates(include_intermediate=False)
    assert [c.recipe_name for c in cands] == ["baseline", "lm-bf16", "lm-int8"]
    # the table: the CLI's LM row of every candidate, perplexity with its CI, tokens/s, prefill ms, size
    table = text[text.index("recipe id runtime status tok/s") : text.index("Generation samples")]
    assert "prefill ms" in table and "ppl [95% CI]" in table and "accuracy" not in table
    for c, row in zip(cands, CausalLM.table_rows(cands)):
        m = c.metrics
        lo, hi = m["perplexity_ci"]
        assert f"{m['perplexity']:.2f} [{lo:.2f}, {hi:.2f}]" in table
        assert f"{m['tokens_per_s']:.1f}" in table and f"{m['prefill_ms']:.1f}" in table
        cells = [row["recipe"], row["id"], *(v for k, v in row.items() if k not in ("recipe", "id", "note"))]
        assert " ".join(cells) in table, row
    # the generation samples, each next to its candidate's numbers
    for c in cands:
        prefix = f"{c.recipe_name} ({c.id}) {c.metrics['tokens_per_s']:.1f} {c.metrics['perplexity']:.2f}"
        for s in c.metrics["samples"]:
            assert f"{s['prompt']} {prefix} {' '.join(s['completion'].split())}" in text, (s, prefix)
    assert all(p in text for p in PROMPTS)
    # the chart on LM axes (PNG: the caption names them), the LM budget verdict, no search yet
    assert _pngs(res.html_path) == 2
    assert "Chart: perplexity (lower is better) against tokens / s (higher is better), 3 candidates" in text
    best = best_within(cands, Budget(**{k: v for k, v in budget.items() if v is not None}))
    assert (
        "The lowest-perplexity candidate within the budget (at least 1 tokens/s, a perplexity at most 25 % above "
        f"FP32): {best.recipe_name} ( {best.id} ): perplexity {best.get('perplexity'):.2f}" in text
    )
    assert f"No search has been run for {folder} with this run store" in text


def test_report_search_section(tmp_path, digits_model):
    from workbench import BenchConfig
    from workbench.search.run import SearchSpace, search

    store = RunStore(tmp_path / "runs.sqlite")
    budget = Budget(max_size_mb=0.3, max_accuracy_drop=0.02)
    # every point of a 4-point space: both FP32 exports break the size limit, the INT8 ones fit
    space = SearchSpace.default(["fp32", "int8-dynamic"], int8_dynamic__fused=(True,))
    found = search(digits_model, budget, space, trials=4, store=store, bench=BenchConfig(warmup=2, runs=5, threads=1))
    assert len(found.trials) == 4 and found.best is not None
    params = {
        **_small(tmp_path / "runs.sqlite"),
        "recipes": ["ort-fp32"],
        "threads": 1,
        "reuse": True,
        "max_latency_ms": None,
        "max_size_mb": 0.3,
        "max_accuracy_drop": 0.02,
    }
    res = run_report("digits-cnn", params, tmp_path / "search.html", cwd=tmp_path)
    assert res.ok, f"{res.failed_cell}: {res.error}"
    assert re.search(r"<h2[^>]*>\s*Search", res.html_path.read_text())
    text = _page_text(res.html_path)
    section = text.split("Search ¶")[1].split("Environment ¶")[0]
    assert f"4 trials in 1 search study ( {found.study_name} )" in section
    # the best within the budget is the one the search itself chose (no latency limit: the fastest that fits)
    b = found.best
    assert f"Best searched candidate within the budget (the fastest that fits): {b.recipe_name} ( {b.id} )" in section
    # every rejected candidate, with the constraint it broke and by how much
    rejected = [t for t in found.trials if t.violations]
    assert {t.family for t in rejected} == {"fp32"} and f"{len(rejected)} of 4 searched candidates" in section
    assert "Rejected search candidates" in section
    for t in rejected:
        (v,) = t.violations
        limit, value, over = v.amounts()
        assert f"{t.number} {t.recipe.name} {t.candidate.id} size {limit} {value} {over}" in section
        assert limit == "0.3 MB" and float(over.split()[0]) > 0
    assert _pngs(res.html_path) == 3  # trade-off, sizes, and the search's Pareto front


def test_search_summary_shows_the_architectures_timed_untrained_and_the_decisions(tmp_path, digits_model):
    from workbench import BenchConfig
    from workbench.report.search_section import search_summary
    from workbench.search.run import SearchSpace, search

    store = RunStore(tmp_path / "runs.sqlite")
    budget = Budget(max_accuracy_drop=0.01)
    bench = BenchConfig(warmup=2, runs=5, threads=1)
    plain = lambda md: re.sub(r"\\(.)", r"\1", md)  # Markdown's escapes undone
    columns = ["architecture", "untrained p50 ms", "judged on", "x baseline", "size MB", "fate"]

    def untrained_table(summary, study):
        (table,) = [t for t in summary.tables if t.caption == f"Architectures timed untrained ({study})"]
        assert list(table.data.columns) == columns
        return table.data

    # a one-second time budget: every architecture timed untrained, no student trained
    space = SearchSpace.default(["architecture"], architecture__train_steps=40, architecture__time_budget_s=1)
    untrained = search(digits_model, budget, space, trials=2, store=store, bench=bench)
    assert untrained.screened and not untrained.trials
    s = search_summary(store, "digits-cnn", budget)
    assert s.trials == [] and s.charts == [] and "No searched candidate of `digits-cnn` was trained" in s.text
    frame = untrained_table(s, untrained.study_name)
    assert frame["architecture"].tolist() == [r["label"] for r in untrained.screened]
    assert frame["fate"].tolist() == [r["fate"] for r in untrained.screened]
    assert any(f.startswith("not trained: about") for f in frame["fate"]) and set(frame["judged on"]) == {"host"}

    # the same architectures (timed once: reused) with the time to train two students
    space = SearchSpace.default(["architecture"], architecture__train_steps=40, architecture__train_seconds=20)
    found = search(digits_model, budget, space, trials=2, store=store, bench=bench)
    assert found.trials and found.study_name != untrained.study_name
    s = search_summary(store, "digits-cnn", budget)
    assert {t.candidate.id for t in s.trials} == {t.candidate.id for t in found.trials}
    assert f"**{len(found.trials)} trials** in 1 search study" in s.text  # the untrained-only study has none
    assert [a.study for a in s.architectures] == sorted([untrained.study_name, found.study_name])
    frame = untrained_table(s, found.study_name)
    assert len(frame) == len(found.screened) and frame["fate"].tolist() == [r["fate"] for r in found.screened]
    assert frame["untrained p50 ms"].tolist() == pytest.approx([r["judged_p50_ms"] for r in found.screened])
    assert frame["size MB"].tolist() == pytest.approx([r["size_bytes"] / 1e6 for r in found.screened])
    assert frame["fate"].str.startswith("trained").sum() == len(found.trials)
    # one paragraph per architecture search with its decisions
    (para,) = [p for p in s.text.split("\n\n") if p.startswith(f"**Architecture search** `{found.study_name}`")]
    for d in found.decisions:
        assert d in plain(para)
    assert f"{len(found.screened)} architectures timed untrained, {len(found.trials)} trained" in para
    assert len(s.tables) == 2 + bool([t for t in found.trials if t.violations])  # + the rejected candidates
