"""The typed pieces a page builder hands its template (pdoc's split: builders pick values, templates present them).

* :class:`Table`: a header and its rows in one object. Each :class:`Column` names the row attribute (or mapping key)
  it shows and the filter that formats it (:data:`xai.report.page.FORMATS`: ``num``, ``pct``, ``secs``, ``p``, ...),
  so a header can never drift from its rows by position, and a row missing a column's value fails at once.
* :class:`Estimate`: a mean (or median) with its 95% interval; :class:`Test`: a paired difference with its test and,
  where it is a claim, the Holm-adjusted p of its family and whether the claim is made.
* :class:`Link`, :class:`Code`: a cell or phrase that is a link or code, escaped by the filters.
* :class:`FigureRef`: a figure file and its alt text; :class:`Answer`: a finding that answers a task's question,
  with the link to its evidence.

A leaf module: it imports nothing of the report, so builders, filters and the domain-facing helpers share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MISSING = object()
NAN = float("nan")


def value_of(row: Any, key: str) -> Any:
    """The value a column shows: a mapping's item or an object's attribute, ``a.b`` for an attribute of one
    (``MISSING`` when there is none)."""
    for part in key.split("."):
        if row is MISSING:
            break
        row = row.get(part, MISSING) if isinstance(row, Mapping) else getattr(row, part, MISSING)
    return row


@dataclass(frozen=True)
class Column:
    title: str
    key: str
    """The row attribute (or mapping key) holding the cell's value."""
    format: str = "auto"
    """The filter that formats the value (``xai.report.page.FORMATS``); ``auto`` formats by the value's type."""
    digits: int | None = None
    """Decimals (``num``, ``ci``, ``pct``) or significant digits (``sig``, ``share``, ``p``); None: the filter's own."""


@dataclass(frozen=True)
class Table:
    """Rows under named columns. Every row must hold every column's key (checked when the table is made)."""

    columns: tuple[Column, ...]
    rows: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "rows", tuple(self.rows))
        for index, row in enumerate(self.rows):
            missing = [column.key for column in self.columns if value_of(row, column.key) is MISSING]
            if missing:
                raise KeyError(f"row {index} of a table has no value for column(s) {missing}: {row!r}")

    def __bool__(self) -> bool:
        return bool(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def table(rows: Sequence[Any], *columns: tuple[Any, ...]) -> Table:
    """``table(rows, ("Method", "method"), ("IoU [95% CI]", "iou", "ci", 2))``: each column as Column's arguments."""
    return Table(tuple(Column(*column) for column in columns), tuple(rows))


@dataclass(frozen=True)
class Estimate:
    """A mean (or median) and its 95% interval; ``low``/``high`` NaN when no interval is defined (one image)."""

    value: float
    low: float = float("nan")
    high: float = float("nan")

    @classmethod
    def of(cls, row: Any, prefix: str, value: str = "mean") -> Estimate:
        """The ``<prefix>_mean``, ``<prefix>_low`` and ``<prefix>_high`` of a table row."""
        parts = (value_of(row, f"{prefix}_{value}"), value_of(row, f"{prefix}_low"), value_of(row, f"{prefix}_high"))
        return cls(*(NAN if part is MISSING or part is None else float(part) for part in parts))


@dataclass(frozen=True)
class Test:
    """A paired difference over images: its mean with the 95% interval, the exact signed-rank p (two-sided and
    one-sided "greater"), how many differences were tested, and, for a claim, its family's Holm-adjusted p."""

    difference: Estimate
    p: float
    p_greater: float
    n: int
    nonzero: int
    note: str = ""
    """The test's name, or why it was not run (``not tested: ...``)."""
    family: str = ""
    family_size: int = 0
    p_holm: float = float("nan")
    claimed: bool = False
    one_sided: bool = False
    """Whether the claim (or the table) reads the one-sided p."""

    @classmethod
    def of(cls, row: Any, prefix: str, *, one_sided: bool = False) -> Test:
        """The paired comparison stored in a table row under ``prefix`` (``PairedComparison.as_dict`` and the family
        columns ``<prefix>p_holm``, ``family``, ``family_size``, ``claim`` where the row has them)."""

        def get(name: str, default: Any) -> Any:
            found = value_of(row, f"{prefix}{name}")
            return default if found is MISSING or found is None else found

        n = int(get("n", 0))
        return cls(
            Estimate(float(get("diff", NAN)), float(get("diff_low", NAN)), float(get("diff_high", NAN))),
            float(get("p", NAN)),
            float(get("p_greater", NAN)),
            n,
            int(get("nonzero", n)),
            str(get("test", "")),
            str(get("family", "") or ""),
            int(get("family_size", 0)),
            float(get("p_holm", NAN)),
            bool(get("claim", False)),
            one_sided,
        )


@dataclass(frozen=True)
class Link:
    text: str
    href: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class FigureRef:
    """A figure written under the docs directory: its path from the page that shows it, and its alt text."""

    src: str
    alt: Any
    """The alt text (a figure function's return value: a pending one until the figure queue resolves it)."""
    caption: str = ""


@dataclass(frozen=True)
class Answer:
    """A finding that answers the task's question, shown first on the home page and on the task's page."""

    finding: str
    evidence: str
    """Where the evidence is: a page from the docs directory with its anchor (``comparison/index.md#agreement``)."""


@dataclass(frozen=True)
class Answers:
    """A task's answers and the one figure that shows them, as the home page and the task's page both show them."""

    findings: tuple[Answer, ...] = ()
    figure: FigureRef | None = None
    """The figure's ``src`` is relative to the docs directory; templates prefix it with their ``root``."""
