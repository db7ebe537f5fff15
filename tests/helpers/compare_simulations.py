"""Planted-answer generators for the comparison's statistics tests (numpy only, seeded, vectorised where it counts).

Each returns data whose answer is known by construction: maps independent of LIME's choice (every null true),
maps sharing only a location bias with LIME, ordered method scores, tied paired differences.
"""

from __future__ import annotations

import numpy as np


def voronoi_segments(rng: np.random.Generator, size: int = 32, n_segments: int = 20) -> np.ndarray:
    """Irregular superpixels of unequal sizes: each pixel labelled by its nearest of ``n_segments`` random sites."""
    sites = rng.uniform(0, size, (n_segments, 2))
    rows, columns = np.indices((size, size))
    distance = (rows[..., None] - sites[:, 0]) ** 2 + (columns[..., None] - sites[:, 1]) ** 2
    labels = np.argmin(distance, axis=-1)
    _, dense = np.unique(labels, return_inverse=True)  # labels 0..S-1, every one present
    return dense.reshape(size, size).astype(np.int32)


def smooth_map(rng: np.random.Generator, size: int = 32, cells: int = 4) -> np.ndarray:
    """A CAM-like map: uniform noise on a ``cells`` grid, upsampled by linear interpolation, plus a little jitter."""
    grid = rng.random((cells, cells))
    axis = np.linspace(0, cells - 1, size)
    low = np.floor(axis).astype(int).clip(0, cells - 2)
    fraction = axis - low
    rows = grid[low] * (1 - fraction)[:, None] + grid[low + 1] * fraction[:, None]
    upsampled = rows[:, low] * (1 - fraction)[None, :] + rows[:, low + 1] * fraction[None, :]
    return upsampled + 1e-6 * rng.random((size, size))


def seed_weights(rng: np.random.Generator, n_segments: int, n_seeds: int, kind: str) -> np.ndarray:
    """LIME weights of ``n_seeds`` seeds on one segmentation: ``identical`` rows, ``correlated`` (a shared base plus
    seed noise of a third of its spread, so the seeds' top-k sets overlap heavily) or ``independent``."""
    base = rng.normal(size=n_segments)
    if kind == "identical":
        return np.tile(base, (n_seeds, 1))
    if kind == "correlated":
        return base + rng.normal(scale=0.35, size=(n_seeds, n_segments))
    return rng.normal(size=(n_seeds, n_segments))


def blob(centre: tuple[float, float], size: int, width: float) -> np.ndarray:
    rows, columns = np.indices((size, size))
    return np.exp(-((rows - centre[0]) ** 2 + (columns - centre[1]) ** 2) / (2 * width**2))


def location_bias(size: int, bias: str) -> np.ndarray:
    """A photo-like location bias as a map: ``centred`` (isotropic Gaussian at the centre), ``wide`` (wider than
    tall: horizontal spread three times the vertical), ``low`` (isotropic, 10% of the side below the centre)."""
    rows, columns = np.indices((size, size))
    middle = (size - 1) / 2
    row_centre, row_spread, column_spread = middle, 0.2 * size, 0.2 * size
    if bias == "wide":
        row_spread, column_spread = 0.08 * size, 0.35 * size
    elif bias == "low":
        row_centre = middle + 0.1 * size
    return np.exp(-((rows - row_centre) ** 2) / (2 * row_spread**2) - (columns - middle) ** 2 / (2 * column_spread**2))


def biased_map(rng: np.random.Generator, size: int, bias: str, noise: float = 0.4) -> np.ndarray:
    """The location bias plus image-specific smooth noise: two such maps share only the bias."""
    return location_bias(size, bias) + noise * smooth_map(rng, size, cells=5)
