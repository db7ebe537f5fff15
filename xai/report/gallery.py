"""The explanation gallery of the Tasks 2-3 overview: every image (rows) x every method (columns), one small
JPEG per cell, laid out as a Markdown table (so it scrolls in the table frame with the image column sticky) whose
panels all open in the lightbox as one gallery, plus one legend image with the colour scales.

One matplotlib figure of all panels shrank each to ~50 px in the content column and opened only as a whole; one
file per panel is readable at the column's width, opens alone in the lightbox, and is redrawn alone when one
method's result changes (the figure cache keys each panel on what it shows).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai.report.figures.jobs import draw

if TYPE_CHECKING:
    from xai.explain.explained import ExplainArtifacts

LEGEND = "grid-legend.png"
"""The section's own assets are files with a suffix, so no image id (the name of that image's asset folder) can
take one: the panels are ``grid-<image id>-<method>.jpg`` beside the legend."""


def build_gallery(
    explained: ExplainArtifacts, assets_dir: Path, image_link: dict[str, str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """Draw the gallery's panels and legend under ``assets_dir``; return the page context of the ``gallery``
    macro (None without images) and the files written, relative to ``assets_dir``.

    Args:
        explained: the explain stage's artifacts (images, their explanations, the methods in registry order).
        assets_dir: the section's asset folder (``docs/assets/explanations``).
        image_link: image id -> its page, relative to the overview page.
    """
    from xai.explain.registry import METHODS
    from xai.report.figures import explain as figures

    if not explained.images:
        return None, []
    categories = explained.categories
    with_lime = any(item.explanation.lime is not None for item in explained.images)
    shown_families = {"cam", "lime"} if with_lime else {"cam"}
    methods = [m for m in explained.methods if METHODS[m].family in shown_families]
    titles = {"image": "Input", **{m: METHODS[m].title for m in methods}}
    written, rows = [], []
    for item in explained.images:
        explanation = item.explanation
        label = categories[explanation.prediction.top1]
        panels = []
        for column in ["image", *methods]:
            name = f"grid-{item.name}-{column}.jpg"
            if column == "image":
                shown: dict[str, Any] = {}
            elif METHODS[column].family == "lime":
                if explanation.lime is None:
                    panels.append(None)  # this image's LIME failed or was not run: an empty cell
                    continue
                shown = {"lime": explanation.lime}
            else:
                shown = {"cam": explanation.cam(column)}
            draw(figures.grid_panel, item.pixels, path=assets_dir / name, **shown)
            written.append(name)
            what = "the image" if column == "image" else f"{titles[column]} for '{label}'"
            panels.append({"file": name, "alt": f"{item.name}: {what}", "title": f"{item.name} · {titles[column]}"})
        rows.append({"name": item.name, "page": image_link[item.name], "label": label, "panels": panels})
    has_cams = any(METHODS[m].family == "cam" for m in methods)
    if with_lime or has_cams:
        draw(figures.grid_legend, path=assets_dir / LEGEND, lime=with_lime, cam=has_cams)
        written.append(LEGEND)
    legend = LEGEND if (with_lime or has_cams) else None
    columns = ["Image → predicted class", *(titles[c] for c in ["image", *methods])]
    return {"columns": columns, "rows": rows, "legend": legend}, written
