"""Per-method tables with uncertainty: every mean with its bootstrap interval, every "beats" as a paired test.

Agreement (per method x k): mean IoU over images with its 95% bootstrap interval, and three paired
comparisons over the same images (``stats.paired_comparison``: mean difference, paired bootstrap interval,
Wilcoxon signed-rank p):

* ``superpixel_*``: IoU − the image's superpixel-null mean (``nulls.SuperpixelNull``); beside it, on how many
  images the per-image permutation p is below ``ALPHA``;
* ``cross_image_*``: IoU − the mean IoU of the same method's CAMs from the other images;
* ``centre_*``: IoU − the centre prior's IoU on the same image.

Faithfulness (per method): mean deletion/insertion AUC and score (insertion − deletion) with intervals, and
paired comparisons of the score against the smooth random maps (mean over draws per image) and the centre
prior. Both tables rank methods in groups the data separate (``stats.rank_groups``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xai.compare.nulls import CENTRE_METHOD
from xai.compare.stats import ALPHA, mean_interval, paired_comparison, rank_groups

NULLS = ("superpixel", "cross_image", "centre")


def _interval(prefix: str, values: pd.Series, seed: int) -> dict[str, float]:
    mean, low, high, _ = mean_interval(values.to_numpy(dtype=np.float64), seed=seed)
    return {f"{prefix}_mean": mean, f"{prefix}_low": low, f"{prefix}_high": high}


def agreement_by_method(table: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """One row per method x k of an ``agreement_table`` (with ``cross_image_iou`` filled in)."""
    rows = []
    scored = table[table["excluded"] == ""]
    centre = scored[scored["method"] == CENTRE_METHOD].set_index(["image", "k"])["iou"]
    for (method, k), group in table.groupby(["method", "k"], sort=False):
        kept = group[group["excluded"] == ""]
        reasons = sorted({f"{row.image}: {row.excluded}" for row in group.itertuples() if row.excluded})
        row: dict[str, object] = {
            "method": method,
            "k": int(k),
            "n_images": len(kept),
            "n_excluded": len(group) - len(kept),
            "excluded": "; ".join(reasons),
        }
        row.update(_interval("iou", kept["iou"], seed))
        row["iou_seed_std_mean"] = float(kept["iou_seed_std"].mean()) if len(kept) else math.nan
        row["chance_iou_mean"] = float(kept["chance_iou"].mean()) if len(kept) else math.nan
        row["superpixel_iou_mean"] = float(kept["superpixel_iou"].mean()) if len(kept) else math.nan
        row["images_beating_superpixel"] = int(np.sum(kept["superpixel_p"] < ALPHA))
        baselines = {
            "superpixel": kept["superpixel_iou"].to_numpy(dtype=np.float64),
            "cross_image": kept["cross_image_iou"].to_numpy(dtype=np.float64),
            "centre": np.array([centre.get((image, k), math.nan) for image in kept["image"]], dtype=np.float64)
            if method != CENTRE_METHOD
            else np.full(len(kept), np.nan),
        }
        for name, baseline in baselines.items():
            row.update(
                paired_comparison(kept["iou"].to_numpy(dtype=np.float64), baseline, seed=seed).as_dict(f"{name}_")
            )
        row.update(_interval("dice", kept["dice"], seed))
        row.update(_interval("rho", kept["rho"], seed))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["agreement_group"] = ""
    frame["agreement_order"] = 0
    for k, group in frame.groupby("k", sort=False):
        at_k = table[(table["k"] == k)]
        images = list(dict.fromkeys(at_k["image"]))
        scores = {
            str(method): at_k[at_k["method"] == method]
            .set_index("image")["iou"]
            .reindex(images)
            .where(lambda s: s.notna(), np.nan)
            .to_numpy(dtype=np.float64)
            for method in group["method"]
        }
        for position, (method, letters, _) in enumerate(rank_groups(scores, seed=seed)):
            rows_at = (frame["k"] == k) & (frame["method"] == method)
            frame.loc[rows_at, "agreement_group"] = letters
            frame.loc[rows_at, "agreement_order"] = position
    return frame


def faithfulness_ranking(faithfulness: pd.DataFrame, by_method: pd.DataFrame, k: int, *, seed: int = 0) -> pd.DataFrame:
    """Methods in faithfulness groups (score = insertion − deletion AUC, higher first), beside agreement.

    ``faithfulness`` is a ``faithfulness_table`` (random draws already averaged into one ``random`` row per
    image). ``iou_mean``/``agreement_group`` come from ``by_method`` at ``k`` (NaN for LIME and random).
    """
    from xai.compare.faithfulness import RANDOM_METHOD

    if faithfulness.empty:
        return pd.DataFrame()
    images = list(dict.fromkeys(faithfulness["image"]))
    per_method = {str(m): g.set_index("image").reindex(images) for m, g in faithfulness.groupby("method", sort=False)}
    scores = {m: g["score"].to_numpy(dtype=np.float64) for m, g in per_method.items()}
    rows = []
    for method, group in per_method.items():
        reasons = sorted({f"{image}: {reason}" for image, reason in group["excluded"].fillna("").items() if reason})
        row: dict[str, object] = {
            "method": method,
            "n_images": int(group["score"].notna().sum()),
            "n_excluded": len(reasons),
            "excluded": "; ".join(reasons),
        }
        for column in ("deletion_auc", "insertion_auc", "score"):
            row.update(_interval(column, group[column], seed))
        row["random_std_mean"] = float(group["random_std"].mean()) if method == RANDOM_METHOD else math.nan
        for name in (RANDOM_METHOD, CENTRE_METHOD):
            other = scores.get(name, np.full(len(images), np.nan))
            comparison = paired_comparison(
                scores[method], other if method != name else np.full(len(images), np.nan), seed=seed
            )
            row.update(comparison.as_dict(f"vs_{name}_"))
        rows.append(row)
    frame = pd.DataFrame(rows)
    groups = rank_groups(scores, seed=seed)
    order = {method: position for position, (method, _, _) in enumerate(groups)}
    frame["faithfulness_group"] = frame["method"].map({m: g for m, g, _ in groups}).fillna("")
    frame["order"] = frame["method"].map(order)
    at_k = by_method[by_method["k"] == k].set_index("method") if len(by_method) else pd.DataFrame()
    frame["iou_mean"] = frame["method"].map(at_k["iou_mean"] if len(at_k) else {}).astype(np.float64)
    frame["agreement_group"] = frame["method"].map(at_k["agreement_group"] if len(at_k) else {}).fillna("")
    return frame.sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)
