"""The papermill report: real kernel, real run store, real nbconvert HTML, real headless Chromium."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from workbench import RunStore
from workbench.budget import Budget, best_within
from workbench.env import fingerprint
from workbench.errors import ConfigError
from workbench.report import DEFAULT_TEMPLATE, _parse_value, run_report, template_parameters

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


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    res = run_report("digits-cnn", _small(d / "runs.sqlite"), d / "digits.html", cwd=d)
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
    _, store_path, _ = report
    params = {**_small(store_path), "recipes": ["ort-fp32"], "max_latency_ms": 0.001, "reuse": True}
    res = run_report("digits-cnn", params, tmp_path / "tight.html", cwd=tmp_path)
    assert res.ok, res.error
    text = _text(res.html_path.read_text())
    assert "No candidate fits within 0.001 ms and 25 MB" in text
    m = re.search(r"The closest is (\S+) \( (\w+) \): latency ([\d.]+) ms exceeds 0.001 ms", text)
    assert m and m.group(1) in ("baseline", "ort-fp32")
    assert m.group(2) in {c.id for c in RunStore(store_path).candidates()}
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
    from workbench.cli import main

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
    assert _parse_value(text) == value


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
