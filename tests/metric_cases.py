"""Small builders of vector-map samples for the metric tests."""

import numpy as np

from mapdistill_core.map_elements import MapElement


def hline(y: float, x0: float = -10.0, x1: float = 10.0, cls: int = 0, score: float = 1.0, num: int = 20):
    """A straight polyline along x at lateral offset y."""
    return MapElement(cls, np.stack([np.linspace(x0, x1, num), np.full(num, y)], axis=1), score)


def random_scene(rng: np.random.Generator, num_gt: int = 8, num_pred: int = 14):
    """Ground truth and noisy, partly spurious predictions for one sample (every class)."""
    gts, preds = [], []
    for _ in range(num_gt):
        cls = int(rng.integers(3))
        k = int(rng.integers(2, 8))
        pts = np.cumsum(rng.normal(0, 4, (k, 2)), axis=0) + rng.uniform(-15, 15, 2)
        if cls == 1:
            pts = np.concatenate([pts, pts[:1]])
        gts.append(MapElement(cls, pts))
    for _ in range(num_pred):
        source = gts[int(rng.integers(len(gts)))]
        # Some predictions copy a gt with noise, some take another class, some have MapTR's 100 points.
        num = int(rng.choice([20, 100]))
        t = np.linspace(0, 1, num)
        src = source.points
        idx = np.interp(t, np.linspace(0, 1, len(src)), np.arange(len(src)))
        lo = np.floor(idx).astype(int).clip(0, len(src) - 2)
        pts = src[lo] + (idx - lo)[:, None] * (src[lo + 1] - src[lo])
        pts = pts + rng.normal(0, rng.choice([0.1, 0.5, 1.5]), pts.shape) + rng.normal(0, 1.0, 2)
        if rng.random() < 0.5:
            pts = pts[::-1]
        cls = source.class_id if rng.random() < 0.8 else int(rng.integers(3))
        preds.append(MapElement(cls, pts, float(rng.random())))
    return preds, gts
