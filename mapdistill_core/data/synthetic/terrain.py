"""Rolling terrain: a grade plus a few long sinusoidal swells, as a smooth height field z = H(x, y).

World frame, metres. The swells make grades and crests: a flat-ground assumption around the ego
misplaces a marking 30 m ahead by metres as soon as the road bends vertically by a few decimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Terrain:
    """H(x, y) = grade . (x, y) + sum_i amplitude_i * cos(wave_i . (x, y) + phase_i).

    Attributes:
        grade: float [2] constant slope (dz/dx, dz/dy).
        waves: float [S, 2] wave vectors (rad/m).
        amplitudes: float [S] metres.
        phases: float [S] radians.
    """

    grade: np.ndarray
    waves: np.ndarray
    amplitudes: np.ndarray
    phases: np.ndarray

    @staticmethod
    def random(rng: np.random.Generator, relief: float) -> Terrain:
        """A random terrain; ``relief`` scales the swell amplitudes (0 gives a tilted plane)."""
        num = 3
        directions = rng.uniform(0, 2 * np.pi, num)
        wavelengths = rng.uniform(150.0, 400.0, num)
        waves = (2 * np.pi / wavelengths)[:, None] * np.stack([np.cos(directions), np.sin(directions)], axis=1)
        amplitudes = relief * rng.uniform(0.5, 1.0, num) * wavelengths / 400.0 * 3.0
        grade_dir = rng.uniform(0, 2 * np.pi)
        grade = rng.uniform(0.0, 0.03) * np.array([np.cos(grade_dir), np.sin(grade_dir)])
        return Terrain(grade, waves, amplitudes, rng.uniform(0, 2 * np.pi, num))

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Terrain height at world (x, y), same shape and float type as x."""
        dtype = np.result_type(x, np.float32)
        grade = self.grade.astype(dtype)
        h = grade[0] * x + grade[1] * y
        for (kx, ky), a, p in zip(
            self.waves.astype(dtype), self.amplitudes.astype(dtype), self.phases.astype(dtype), strict=True
        ):
            h += a * np.cos(kx * x + ky * y + p)
        return h

    @property
    def max_slope(self) -> float:
        """An upper bound of |grad H| anywhere (a Lipschitz constant of H)."""
        return float(np.linalg.norm(self.grade) + np.sum(self.amplitudes * np.linalg.norm(self.waves, axis=1)))

    def gradient(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dH/dx, dH/dy) at world (x, y)."""
        gx = np.full(np.shape(x), self.grade[0], dtype=np.float64)
        gy = np.full(np.shape(x), self.grade[1], dtype=np.float64)
        for (kx, ky), a, p in zip(self.waves, self.amplitudes, self.phases, strict=True):
            s = -a * np.sin(kx * x + ky * y + p)
            gx, gy = gx + s * kx, gy + s * ky
        return gx, gy
