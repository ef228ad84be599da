"""Bird's-eye-view pictures of map elements: predictions drawn over ground truth.

The picture is in base_link with the ego at the centre and x (forward) pointing up, so y (left)
points to the left of the page.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from mapdistill_core.data.sample import CAMERA_NAMES, Sample  # noqa: E402
from mapdistill_core.map_elements import CLASS_COLORS, CLASS_NAMES, REGION, MapElement  # noqa: E402
from mapdistill_core.output_paths import picture_format  # noqa: E402

RIG_LAYOUT = (("CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT"), ("CAM_BACK_LEFT", "CAM_BACK", "CAM_BACK_RIGHT"))
"""How the six cameras are arranged in pictures: front row, back row, left to right."""


def draw_bev(
    ax: plt.Axes,
    predictions: list[MapElement],
    ground_truth: list[MapElement],
    score_threshold: float = 0.0,
    title: str | None = None,
    gt_width: float = 5.0,
    gt_alpha: float = 0.3,
) -> None:
    """Draw ground truth (by default wide and pale) and predictions (thin, with points) on a BEV axis.

    Points are plotted as (y, x) with the horizontal axis inverted, so the page shows the scene
    as seen from above with the car driving up.
    """
    x_min, y_min, x_max, y_max = REGION
    for e in ground_truth:
        ax.plot(
            e.points[:, 1],
            e.points[:, 0],
            color=CLASS_COLORS[e.class_name],
            lw=gt_width,
            alpha=gt_alpha,
            solid_capstyle="round",
        )
    for e in predictions:
        if e.score >= score_threshold:
            ax.plot(e.points[:, 1], e.points[:, 0], color=CLASS_COLORS[e.class_name], lw=1.2, marker=".", ms=3)
    ax.plot([0.0], [0.0], marker="^", color="black", ms=9)
    ax.set_xlim(y_max, y_min)
    ax.set_ylim(x_min, x_max)
    ax.set_aspect("equal")
    ax.set_xlabel("y, left (m)")
    ax.set_ylabel("x, forward (m)")
    ax.grid(True, lw=0.3, alpha=0.5)
    if title:
        ax.set_title(title, fontsize=8)


def legend_handles() -> list[Line2D]:
    """Legend entries: one colour per class, and the two line styles."""
    handles = [Line2D([], [], color=CLASS_COLORS[n], lw=2, label=n) for n in CLASS_NAMES]
    handles.append(Line2D([], [], color="gray", lw=5, alpha=0.3, label="ground truth"))
    handles.append(Line2D([], [], color="gray", lw=1.2, marker=".", label="prediction"))
    return handles


def save_bev_png(
    path: str | Path,
    predictions: list[MapElement],
    ground_truth: list[MapElement],
    score_threshold: float = 0.0,
    title: str | None = None,
) -> None:
    """Write one BEV picture of predictions over ground truth (PNG, or the format of ``path``'s suffix)."""
    fig, ax = plt.subplots(figsize=(4, 7), dpi=120)
    draw_bev(ax, predictions, ground_truth, score_threshold, title)
    ax.legend(handles=legend_handles(), loc="lower left", fontsize=6, framealpha=0.8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=picture_format(path))
    plt.close(fig)


def save_sample_png(path: str | Path, sample: Sample, title: str | None = None) -> None:
    """One picture of a Sample: the six cameras in rig layout, and a BEV of the LiDAR (coloured by
    intensity) under the ground-truth vectors."""
    fig = plt.figure(figsize=(14, 4.6), dpi=110)
    grid = fig.add_gridspec(2, 4, width_ratios=[1, 1, 1, 0.6], wspace=0.08, hspace=0.12)
    for r, row in enumerate(RIG_LAYOUT):
        for c, name in enumerate(row):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(sample.images[CAMERA_NAMES.index(name)])
            ax.set_title(name, fontsize=7)
            ax.axis("off")
    ax = fig.add_subplot(grid[:, 3])
    lidar = sample.lidar
    x_min, y_min, x_max, y_max = REGION
    inside = (lidar[:, 0] >= x_min) & (lidar[:, 0] <= x_max) & (lidar[:, 1] >= y_min) & (lidar[:, 1] <= y_max)
    order = np.argsort(lidar[inside, 3])
    points = lidar[inside][order]
    ax.scatter(points[:, 1], points[:, 0], c=points[:, 3], s=0.3, cmap="viridis", vmin=0, vmax=255, linewidths=0)
    draw_bev(ax, [], list(sample.ground_truth), gt_width=1.2, gt_alpha=0.9)
    ax.set_title("LiDAR (intensity) + ground truth", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.xaxis.label.set_size(7)
    ax.yaxis.label.set_size(7)
    if title:
        fig.suptitle(title, fontsize=9)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", format=picture_format(path))
    plt.close(fig)
