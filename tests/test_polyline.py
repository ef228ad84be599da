"""Resampling, clipping and permutation sets of polylines."""

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mapdistill_core.map_elements import REGION, MapElement, is_closed
from mapdistill_core.polyline import clip_polygon, clip_polyline, polyline_permutations, resample_polylines

coordinate = st.floats(-30, 30, allow_nan=False, width=64)


@st.composite
def polylines(draw, closed=False):
    k = draw(st.integers(2, 12))
    pts = draw(arrays(np.float64, (k, 2), elements=coordinate, unique=False))
    lengths = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    pts = pts[np.concatenate([[True], lengths > 1e-3])]  # no zero-length segments
    if len(pts) < (3 if closed else 2):
        pts = np.array([[0.0, 0.0], [5.0, 0.0], [5.0, 4.0]])
    return np.concatenate([pts, pts[:1]]) if closed else pts


@given(polylines(), st.integers(2, 60))
@settings(max_examples=200, deadline=None)
def test_resample_keeps_endpoints_and_spacing(points, num):
    out = resample_polylines(points, num)
    assert out.shape == (num, 2)
    np.testing.assert_allclose(out[0], points[0], atol=1e-9)
    np.testing.assert_allclose(out[-1], points[-1], atol=1e-9)
    line = shapely.LineString(points)
    spacing = line.length / (num - 1)
    # Every output point lies on the line at arc length i * spacing (independent check: shapely).
    expected = np.array([line.interpolate(i * spacing).coords[0] for i in range(num)])
    np.testing.assert_allclose(out, expected, atol=1e-6)
    # A chord is never longer than the arc it spans.
    assert np.all(np.linalg.norm(np.diff(out, axis=0), axis=1) <= spacing + 1e-9)


@given(polylines(closed=True), st.integers(3, 60))
@settings(max_examples=100, deadline=None)
def test_resample_closed_stays_closed(points, num):
    out = resample_polylines(points, num)
    assert is_closed(out)


def test_resample_straight_line_is_evenly_spaced():
    out = resample_polylines(np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]]), 11)
    np.testing.assert_allclose(out[:, 0], np.arange(11.0))
    np.testing.assert_allclose(out[:, 1], 0.0)


def test_resample_batch_equals_single():
    rng = np.random.default_rng(0)
    batch = rng.uniform(-10, 10, (5, 7, 2))
    out = resample_polylines(batch, 20)
    for i in range(5):
        np.testing.assert_allclose(out[i], resample_polylines(batch[i], 20))


def test_resample_zero_length_and_bad_shapes():
    np.testing.assert_allclose(resample_polylines(np.ones((3, 2)), 4), np.ones((4, 2)))
    with pytest.raises(ValueError, match="K>=2"):
        resample_polylines(np.ones((1, 2)), 4)
    with pytest.raises(ValueError, match="num"):
        resample_polylines(np.ones((3, 2)), 1)


def test_clip_polyline_to_region():
    (piece,) = clip_polyline(np.array([[0.0, 0.0], [50.0, 0.0]]))
    np.testing.assert_allclose(piece, [[0.0, 0.0], [30.0, 0.0]])
    assert clip_polyline(np.array([[40.0, 0.0], [50.0, 0.0]])) == []
    pieces = clip_polyline(np.array([[0.0, 20.0], [0.0, 0.0], [10.0, 0.0], [10.0, 20.0]]))
    assert len(pieces) == 1
    np.testing.assert_allclose(pieces[0][[0, -1]], [[0.0, 15.0], [10.0, 15.0]])
    x_min, y_min, x_max, y_max = REGION
    assert all((p[:, 0] >= x_min).all() and (p[:, 0] <= x_max).all() for p in pieces)
    assert all((p[:, 1] >= y_min).all() and (p[:, 1] <= y_max).all() for p in pieces)


def test_clip_closed_ring_crossing_the_border_joins_its_start():
    # A ring that starts inside, leaves through x = 30 and comes back: one open piece, not two.
    ring = np.array([[20.0, 0.0], [40.0, 0.0], [40.0, 10.0], [20.0, 10.0], [20.0, 0.0]])
    pieces = clip_polyline(ring)
    assert len(pieces) == 1
    assert not is_closed(pieces[0])
    np.testing.assert_allclose(pieces[0][[0, -1]], [[30.0, 10.0], [30.0, 0.0]])
    inside = np.array([[0.0, 0.0], [5.0, 0.0], [5.0, 5.0], [0.0, 0.0]])
    (kept,) = clip_polyline(inside)
    assert is_closed(kept)


def test_clip_polygon_returns_closed_rings_inside():
    square = np.array([[25.0, 0.0], [35.0, 0.0], [35.0, 4.0], [25.0, 4.0], [25.0, 0.0]])
    (ring,) = clip_polygon(square)
    assert is_closed(ring)
    assert ring[:, 0].max() == pytest.approx(30.0)
    assert shapely.Polygon(ring).area == pytest.approx(20.0)
    assert clip_polygon(square + [20.0, 0.0]) == []


def test_permutations_of_open_polyline():
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 1.0]])
    perms = polyline_permutations(pts)
    assert perms.shape == (2, 3, 2)
    np.testing.assert_array_equal(perms[0], pts)
    np.testing.assert_array_equal(perms[1], pts[::-1])


def test_permutations_of_closed_polyline():
    ring = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    perms = polyline_permutations(ring)
    assert perms.shape == (8, 5, 2)
    np.testing.assert_array_equal(perms[0], ring)
    assert len({p.tobytes() for p in perms}) == 8
    for p in perms:
        assert is_closed(p)
        assert shapely.Polygon(p).equals(shapely.Polygon(ring))
    np.testing.assert_array_equal(perms[4], ring[::-1])


def test_map_element_validates():
    e = MapElement(1, [[0, 0], [1, 0], [1, 1], [0, 0]], 0.5)
    assert e.class_name == "ped_crossing" and e.closed and e.points.dtype == np.float64
    with pytest.raises(ValueError, match="class_id"):
        MapElement(3, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        MapElement(0, np.zeros((2, 3)))
