"""Page builders compute nothing and format no number (issue #23): templates own presentation, the domain modules
own the numbers and the sentences.

An AST check over every builder module (``xai/report/pages_*.py`` and the Task 4 page's tables,
``xai/report/compare_tests.py``): no numpy or pandas reduction (``.mean()``, ``np.sum``, ``.agg`` ...), no builtin
``sum``/``min``/``max``/``round``, no f-string with a format spec (``{x:.3f}``, ``{n:,}``), no ``str.format`` or ``%``
formatting, no call of a report filter (``fmt_*``). The checker itself is tested on planted sources, so it cannot
pass by finding nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[1] / "xai" / "report"
BUILDERS = sorted([*REPORT.glob("pages_*.py"), REPORT / "compare_tests.py"])
REDUCTIONS = frozenset(
    {
        "mean", "nanmean", "average", "sum", "nansum", "std", "nanstd", "var", "median", "nanmedian", "quantile",
        "percentile", "nanpercentile", "prod", "cumsum", "agg", "aggregate", "describe", "min", "max", "nanmin",
        "nanmax", "idxmin", "idxmax", "argmin", "argmax", "mode", "count_nonzero",
    }
)  # fmt: skip
"""Method or function names that reduce numbers to a statistic."""
BUILTINS = frozenset({"sum", "min", "max", "round", "divmod"})
EXEMPT = {"pages_dissect.py": {"_catalogue_page", "_model_about"}}
"""The neuron catalogue's functions belong to the site's own change (issue #23, part B) and are checked there."""


def violations(source: str, exempt: frozenset[str] = frozenset()) -> list[str]:
    """``line: what`` for every computed statistic or formatted number in ``source`` (outside ``exempt``
    functions)."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in exempt:
            skipped |= {id(child) for child in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            spec = "".join(str(part.value) for part in ast.walk(node.format_spec) if isinstance(part, ast.Constant))
            found.append(f"{node.lineno}: f-string number format ':{spec}'")
        elif isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Attribute) and function.attr in REDUCTIONS:
                found.append(f"{node.lineno}: reduction .{function.attr}()")
            elif isinstance(function, ast.Attribute) and function.attr == "format":
                found.append(f"{node.lineno}: str.format")
            elif isinstance(function, ast.Name) and (function.id in BUILTINS or function.id == "format"):
                found.append(f"{node.lineno}: builtin {function.id}()")
            elif isinstance(function, ast.Name) and function.id.startswith("fmt_"):
                found.append(f"{node.lineno}: formats with {function.id}()")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
            found += [f"{node.lineno}: %-formatting"] if isinstance(node.left.value, str) else []
    return found


@pytest.mark.parametrize("path", BUILDERS, ids=[path.name for path in BUILDERS])
def test_no_builder_computes_a_statistic_or_formats_a_number(path: Path) -> None:
    found = violations(path.read_text(), frozenset(EXEMPT.get(path.name, ())))
    assert not found, f"{path.name} computes or formats (move it to a domain module or a template filter): {found}"


def test_the_builders_are_found() -> None:
    names = {path.name for path in BUILDERS}
    assert {"pages_compare.py", "pages_dissect.py", "pages_explain.py", "pages_home.py", "pages_concepts.py"} <= names
    assert "compare_tests.py" in names


PLANTED = """
import numpy as np


def build(site):
    scores = [row.score for row in site.rows]
    mean = sum(scores) / len(scores)
    spread = np.std(scores)
    best = site.frame["iou"].mean()
    return {
        "mean": f"{mean:.3f}",
        "spread": "{:.2f}".format(spread),
        "best": "%.1f" % best,
        "count": f"{len(scores):,}",
        "share": fmt_percent(best),
        "plain": f"{site.name}: {len(scores)} images",
    }


def _catalogue_page(site):
    return f"{site.score:.3f}"
"""


def test_the_check_finds_every_planted_computation_and_format() -> None:
    found = violations(PLANTED, frozenset({"_catalogue_page"}))
    kinds = [line.split(": ", 1)[1] for line in found]
    assert kinds.count("builtin sum()") == 1
    assert "reduction .std()" in kinds and "reduction .mean()" in kinds
    assert "f-string number format ':.3f'" in kinds and "f-string number format ':,'" in kinds
    assert "str.format" in kinds and "%-formatting" in kinds and "formats with fmt_percent()" in kinds
    assert len(found) == 8  # not the plain f-string, not the exempt function
