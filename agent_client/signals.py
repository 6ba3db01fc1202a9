"""The three PCS signals computed from an agent's data: D̂ (box counting), coh★ and v★, and r.

Everything is vectorised with numpy: no Python loop runs over single points, and coh★ loops only over
the one or two directions it must confirm, so a 10 000 x 768 cloud takes milliseconds. Every random
choice comes from a generator seeded with the PCS's ``seed``, so the same data and seed give the same
signals on every run.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController

from agent_client.dimension import theil_sen_dhat

DEFAULT_SCALES = (2, 4, 8, 16, 32)
# Box counting runs in the cloud's first three principal axes (see principal_image): 3 is the most a few
# hundred points fill at the scales 2..32, and the least that tells a 3-D manifold from a plane.
DIMENSION_DIMS = 3
PQ_SUBSPACES = 8  # r from embeddings: blocks of coordinates, each quantised on its own
# Codes per block; at most a quarter of the number of points, so that two tokens that say the same thing share
# a code whatever the length (with as many codes as points, every token gets its own and r measures only the
# count), and few enough that the copies of a repeated token are not split among several codes.
PQ_CODES = 8
ZLIB_LEVEL = 6  # r from bytes; see compressibility_bytes
ZLIB_BLOCK = 4 << 20


def _require_real(points: Any) -> None:
    """ValueError for complex numbers, which a conversion to float64 would cut to their real parts silently."""
    if np.iscomplexobj(points):
        raise ValueError(
            "the point cloud holds complex numbers: give real coordinates (e.g. real and imaginary parts as columns)"
        )


def as_cloud(points: Any, check_finite: bool = True, keep_float32: bool = False) -> np.ndarray:
    """``points`` as a 2-D float64 array (a 1-D array is one coordinate per point); ValueError otherwise, or
    for NaN and infinities when ``check_finite``.

    ``keep_float32``: a numpy array of float32 (or float16) values stays float32, for a caller whose
    results do not depend on it: every such value is exactly a float64 too, and widening 10 000 x 768
    of them would cost a 61 MB copy.
    """
    _require_real(points)
    if keep_float32 and isinstance(points, np.ndarray) and points.dtype in (np.float16, np.float32):
        cloud = points.astype(np.float32, copy=False)
    else:
        cloud = np.asarray(points, dtype=np.float64)
    if cloud.ndim == 1:
        cloud = cloud[:, None]
    if cloud.ndim != 2:
        raise ValueError(f"a point cloud is a 2-D array (points x dimensions), got {cloud.ndim} dimensions")
    if check_finite:
        _check_finite(cloud)
    return cloud


def _check_finite(cloud: np.ndarray) -> None:
    if not np.isfinite(cloud).all():
        raise ValueError("the point cloud contains NaN or infinite values")


def _check_projectable(cloud: np.ndarray) -> None:
    """Projections of the cloud, and the distance between any two of them, stay finite in float64."""
    limit = np.finfo(np.float64).max / (2 * cloud.shape[1])  # |x·u| ≤ dims·max|x_j| for a unit u
    if len(cloud) and np.abs(cloud).max() > limit:
        raise ValueError(f"the point cloud has coordinates beyond ±{limit:.3g}, too large to project in float64")


def normalise_to_unit_cube(points: Any) -> np.ndarray:
    """Map each coordinate to [0, 1] by its own min and max; a constant coordinate becomes 0."""
    cloud = as_cloud(points)
    if len(cloud) == 0:
        return cloud
    low = cloud.min(axis=0)
    with np.errstate(over="ignore"):
        span = cloud.max(axis=0) - low
    if not np.isfinite(span).all():  # coordinates apart by more than float64 holds: halved, the ratios are the same
        return normalise_to_unit_cube(cloud * 0.5)
    return (cloud - low) / np.where(span > 0, span, 1.0)


def box_counts(points: Any, scales: Sequence[int] = DEFAULT_SCALES) -> dict[int, int]:
    """N_j for each scale: the number of distinct non-empty cells of side 1/scale that hold a point.

    The cloud is first normalised to the unit cube; a point on the upper face falls in the last cell.
    """
    return _occupied_cells(normalise_to_unit_cube(points), scales)


def _occupied_cells(unit: np.ndarray, scales: Sequence[int]) -> dict[int, int]:
    """For each scale, the number of distinct cells of side 1/scale that hold a point of ``unit`` (in [0, 1])."""
    counts: dict[int, int] = {}
    for scale in scales:  # a handful of scales; each one is a single vectorised pass over the points
        cells = np.minimum(np.floor(unit * scale), scale - 1).astype(np.int64)
        # Each row of cell indices viewed as one opaque byte string, so np.unique compares whole rows at once.
        rows = np.ascontiguousarray(cells).view(np.dtype((np.void, cells.dtype.itemsize * cells.shape[1])))
        counts[int(scale)] = len(np.unique(rows)) if len(cells) else 0
    return counts


def principal_image(points: Any, dims: int = DIMENSION_DIMS) -> np.ndarray:
    """The cloud's coordinates along its first ``dims`` principal axes (all of it when it has no more).

    Box counting in d dimensions needs about scale**d points before the finest boxes stop holding one point
    each: in the 384 dimensions of a sentence embedding every token has a box of its own at scale 2 already,
    N_j is the number of points at every scale and the slope is 0. The principal axes keep the directions in
    which the cloud spreads most, so a cloud on a line, a plane or a 3-D manifold keeps its dimension (up to
    ``dims``), and the counts see structure at the scales a PCS carries. The axes come from the eigenvectors
    of the covariance matrix (float64, numpy's ``eigh``): no random choice, so no seed; an axis's sign does not
    change the counts, as each coordinate is then scaled to [0, 1] on its own.
    """
    cloud = as_cloud(points)
    if cloud.shape[1] <= dims or len(cloud) < 2:
        return cloud
    centred = cloud - cloud.mean(axis=0)
    _values, vectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues: the last columns lead
    return centred @ vectors[:, ::-1][:, :dims]


def dimension_counts(points: Any, scales: Sequence[int] = DEFAULT_SCALES, dims: int = DIMENSION_DIMS) -> dict[int, int]:
    """N_j of the PCS (the agent's D̂): boxes of side span/scale over the cloud's ``principal_image``.

    The image is scaled to the unit cube by one factor for every axis (its largest span), not axis by axis:
    a line with a little noise in the other directions stays a line, where stretching each axis to [0, 1]
    would blow the noise up to the size of the line. A point on the upper face falls in the last cell.
    """
    cloud = as_cloud(points)
    if len(cloud) == 0:
        return {int(s): 0 for s in scales}
    largest = float(np.abs(cloud).max())
    # One factor for the whole cloud changes no count, and keeps the covariance and the spans finite for
    # coordinates up to float64's limit.
    image = principal_image(cloud / largest if largest > 0 else cloud, dims)
    low = image.min(axis=0)
    span = float((image.max(axis=0) - low).max())
    return _occupied_cells((image - low) / (span if span > 0 else 1.0), scales)


def dimension(
    points: Any, scales: Sequence[int] = DEFAULT_SCALES, dims: int | None = None
) -> tuple[float, dict[int, int]]:
    """D̂ of the cloud (Theil–Sen over log2 N_j against log2 scale) and the box counts it came from.

    ``dims``: count boxes in the cloud's first ``dims`` principal axes (``dimension_counts``, what the
    builder does); None counts them in every coordinate.
    """
    counts = box_counts(points, scales) if dims is None else dimension_counts(points, scales, dims)
    return theil_sen_dhat(list(scales), {str(s): n for s, n in counts.items()}), counts


def random_directions(count: int, dims: int, seed: int) -> np.ndarray:
    """``count`` unit vectors drawn uniformly on the sphere in ``dims`` dimensions (normalised Gaussians)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"the seed must be an integer ≥ 0 (the PCS's seed), got {seed!r}")
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal((count, dims))
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


_ROUNDOFF_32 = 2.0**-24  # unit roundoff of float32
_ROUNDOFF_64 = 2.0**-53  # unit roundoff of float64
_UNDERFLOW_32 = 2.0**-126  # the most a float32 operation loses to underflow, even flushing to zero
_BLOCK = 256  # dimensions per float32 matrix product; the partial products are summed in float32
_ROWS = 1000  # points converted to float32 and projected at a time, by one thread
_CHUNK = 1000  # points binned at a time, in the same few buffers, which stay in cache
_PAIRED_SLOTS = 1 << 18  # two directions share a counted key when that makes at most this many counts
_COUNTED_KEYS = 1 << 19  # keys a thread gathers before np.bincount counts them (4 MiB)


def _gamma(roundings: int, roundoff: float) -> float:
    """γ_k: a dot product whose terms go through at most k roundings is off by at most γ_k Σ|x_j u_j|."""
    return roundings * roundoff / (1.0 - roundings * roundoff)


def _direction_max(cloud: np.ndarray, unit: np.ndarray, bins: int) -> int:
    """The largest bin count along one direction: one np.histogram call (``coherence_loop``'s step).

    When ``bins`` distinct edges do not fit between the min and the max of the projections (equal values
    beside a huge coordinate, which np.histogram's half a unit either side does not move, or values apart
    by a few rounding steps only), np.histogram refuses; the points coincide at float64's precision, so
    they are all in one bin.
    """
    values = cloud.astype(np.float64, copy=False) @ unit  # a float32 cloud widened, as the loop has it
    try:
        hist, _ = np.histogram(values, bins=bins)
    except ValueError:
        first, last = values.min(), values.max()
        if first == last:  # np.histogram's range for equal values
            first, last = first - 0.5, last + 0.5
        if math.isfinite(float(last) - float(first)) and not (np.diff(np.linspace(first, last, bins + 1)) > 0).all():
            return len(values)
        raise
    return int(hist.max())


@functools.cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries numpy loaded (found once: looking them up walks the process's shared libraries)."""
    return ThreadpoolController()


_BLAS_LIMIT = threading.Lock()  # one caller at a time changes the BLAS thread count, so each restores it right


# The threads that work beside the caller (see ``_shared_out``), started on first use and kept: starting
# threads on every call cost about a tenth of a coherence over 10 000 x 768 points.
_helpers: ThreadPoolExecutor | None = None
_helper_count = 0


def _new_lock_in_child() -> None:
    """A child forked while another thread held the lock would wait for it forever: it starts with a new one.

    Nor does a child have the parent's helper threads: it starts its own when it needs them.
    """
    global _BLAS_LIMIT, _helpers, _helper_count
    _BLAS_LIMIT = threading.Lock()
    _helpers, _helper_count = None, 0


os.register_at_fork(after_in_child=_new_lock_in_child)


@contextmanager
def _projection_threads() -> Iterator[int]:
    """How many threads project at once, with the BLAS kept to one thread each meanwhile.

    As many as the BLAS would use on its own (so OPENBLAS_NUM_THREADS and the like still set the limit).
    Each thread converts its slice of points to float32 and projects it while the slice is in cache; a
    multi-threaded BLAS would instead leave the conversion, a third of the work, on one core.
    """
    with _BLAS_LIMIT:
        blas = _blas().select(user_api="blas")
        threads = max((library["num_threads"] for library in blas.info()), default=1)
        if threads <= 1:
            yield 1
            return
        with blas.limit(limits=1):
            yield threads


T = TypeVar("T")
_kept = threading.local()  # each thread's scratch arrays, kept from one call to the next (see _kept_array)
_KEPT_BYTES = 16 << 20  # the largest array a thread keeps


def _kept_array(purpose: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array for this thread's ``purpose``, whose memory the thread keeps for its next call.

    Memory fresh from the system costs a page fault per 4 KiB page: over 10 000 x 768 points, the two
    threads' float32 slices and binning scratch took about 3,000 faults, a tenth of a coherence. The kept
    memory (16 MiB at most per purpose and thread, 12 MiB in all for 768 dimensions on two threads) goes
    with the thread. The caller must be done with the array before it asks for the same purpose again.
    """
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    if size > _KEPT_BYTES:
        return np.empty(shape, dtype)
    memory = getattr(_kept, purpose, None)
    if memory is None or len(memory) < size:
        memory = np.empty(size, np.uint8)
        setattr(_kept, purpose, memory)
    return memory[:size].view(dtype).reshape(shape)


def _shared_out(work: Callable[[range], T], starts: range) -> list[T]:
    """``work`` on every ``_projection_threads``-th start, one share per thread: the results, in share order.

    The shares interleave (starts 0, k, 2k... go to the first thread), so that each thread gets as many rows
    as the others even when the last slice is short. The calling thread works the first share itself, and
    kept helper threads the others; it returns (or raises) only once every share is done, so no helper is
    still writing into the caller's arrays afterwards.
    """
    global _helpers, _helper_count
    with _projection_threads() as threads:
        threads = min(threads, len(starts))
        if threads <= 1:
            return [work(starts)]
        if _helpers is None or _helper_count < threads - 1:
            if _helpers is not None:
                _helpers.shutdown(wait=False)
            _helpers, _helper_count = ThreadPoolExecutor(threads - 1, "flk-signals"), threads - 1
        shares = [starts[k::threads] for k in range(threads)]
        others = [_helpers.submit(work, share) for share in shares[1:]]
        try:
            first = work(shares[0])
        finally:
            wait(others)
        return [first, *(future.result() for future in others)]


class _Projections(NamedTuple):
    """The float32 projections of a cloud, with what binning them needs to know."""

    values: np.ndarray  # points x directions, float32
    gap: float  # the most any value is off the loop's float64 value
    magnitude: float  # at least |any value|, the loop's included
    lowest: np.ndarray  # the min of each column of ``values``
    highest: np.ndarray  # and its max


def _float32_projections(cloud: np.ndarray, units: np.ndarray) -> _Projections | None:
    """float32 projections (points x directions), a bound on their distance to the loop's, and on |p|.

    The loop projects in float64 with ``cloud @ unit``; whatever order its BLAS sums in, its value is within
    γ_(d+1)·Σ|x_j u_j| of the exact dot product. The float32 value differs from the exact one by rounding
    the point and the direction to float32 (2^-24 each, relative) and by the float32 sums: at most _BLOCK
    roundings inside a block plus one per block to add the blocks up. Each of those is relative to
    Σ|x_j u_j| ≤ |x|·|u| (Cauchy–Schwarz), so ``gap`` = (sum of the relative bounds)·max|x|·max|u|, plus
    2^-126 per operation for underflow. Returns None when the cloud does not fit in float32 (or is not
    finite, which the same check catches: NaN and ±inf survive the conversion and the sum of squares).
    The points go through in slices of _ROWS, shared out among ``_projection_threads``, so each float32
    slice is still in cache for its products, and for the min and max of its projections.
    """
    n, dims = cloud.shape
    unit32 = units.astype(np.float32)
    in_place = cloud.dtype == np.float32 and cloud.flags.c_contiguous  # already float32: projected as it is
    proj = np.empty((n, len(units)), dtype=np.float32)
    starts = range(0, n, _ROWS)

    def project(slices: range) -> tuple[float, np.ndarray, np.ndarray]:
        """Converts and projects the slices starting at ``slices``: the largest float32 |x|² among them, and
        the min and max of their projections along each direction."""
        largest, lowest, highest = (
            0.0,
            np.full(len(units), np.inf, np.float32),
            np.full(len(units), -np.inf, np.float32),
        )
        buffer = None if in_place else _kept_array("points", (min(n, _ROWS), dims), np.float32)
        for start in slices:
            with np.errstate(over="ignore"):  # a value beyond float32 becomes inf here, and is caught just below
                if in_place:
                    single = cloud[start : start + _ROWS]
                else:
                    single = buffer[: min(_ROWS, n - start)]
                    np.copyto(single, cloud[start : start + _ROWS], casting="same_kind")
                squares = float(np.matmul(single[:, None, :], single[:, :, None]).max())  # row by row dot products
            if not math.isfinite(squares):
                return math.inf, lowest, highest
            largest = max(largest, squares)
            part = proj[start : start + _ROWS]
            np.matmul(single[:, :_BLOCK], unit32[:, :_BLOCK].T, out=part)
            for block in range(_BLOCK, dims, _BLOCK):
                part += single[:, block : block + _BLOCK] @ unit32[:, block : block + _BLOCK].T
            np.minimum(lowest, _column_extreme(part, np.minimum), out=lowest)
            np.maximum(highest, _column_extreme(part, np.maximum), out=highest)
        return largest, lowest, highest

    shares = _shared_out(project, starts)
    largest = max(share[0] for share in shares)
    if not math.isfinite(largest):
        return None
    lowest = np.minimum.reduce([share[1] for share in shares])
    highest = np.maximum.reduce([share[2] for share in shares])
    # The float32 sum of squares is low by at most γ of it, and by 2^-126 per square that underflows.
    radius = math.sqrt(largest / (1.0 - _gamma(dims + 1, _ROUNDOFF_32)) + dims * _UNDERFLOW_32)
    length = max(np.linalg.norm(units, axis=1).max(), np.linalg.norm(unit32.astype(np.float64), axis=1).max())
    blocks = -(-dims // _BLOCK)
    relative = (
        _gamma(min(_BLOCK, dims) + blocks, _ROUNDOFF_32)  # float32 products and sums
        + 3.0 * _ROUNDOFF_32  # points and directions rounded to float32 (with room for |x| ≤ |x̃|(1 + 2^-24))
        + _gamma(dims + 1, _ROUNDOFF_64)  # the loop's float64 dot product
    )
    scale = float(radius * length) * (1.0 + 1e-6)  # the 1e-6 covers rounding in these few scalar steps
    gap = relative * scale * (1.0 + 1e-6) + 4.0 * dims * _UNDERFLOW_32
    return _Projections(proj, gap, scale + gap, lowest, highest)


def _frame(
    first: np.ndarray, last: np.ndarray, gap: float, magnitude: float, bins: int, dtype: type
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How sure binning is, per direction, when every value (and so its min and max) is within ``gap``.

    The loop's min and max are within ``gap`` of ours, so np.linspace puts each of its edges within 3·gap,
    plus a few float64 ulps of ``magnitude`` (≥ |any value|), of ours; a value is within ``gap`` of the
    loop's. So a value farther than that ``drift`` from every interior edge is in the same bin for the loop
    as for us (np.histogram's corrections make its bins exactly "edge ≤ value < next edge", the last one
    closed, and every value lies between the outer edges). Returns, per direction, whether its bins are too
    narrow for that to decide anything, the factor that turns value − min into bin units, and the margin, in
    bin units, within which a value is in doubt. The margin includes 8 roundings of ``dtype`` per bin unit,
    which covers the at most 5 that ``_bin_keys`` makes. A margin over 1/4 (bins so many that rounding alone
    blurs them) also counts as too narrow, so no value is ever within the margin of two edges; a direction
    too narrow gets a stretch and a margin of 0, which puts all its values in bin 0.
    """
    roundoff = np.finfo(dtype).eps / 2
    width = (np.asarray(last, dtype=np.float64) - first) / bins
    drift = 4.0 * gap + 16.0 * _ROUNDOFF_64 * magnitude
    narrow = width <= 8.0 * drift  # also catches a zero range, which np.histogram widens by 0.5 each side
    width = np.where(narrow, 1.0, width)
    margin = (drift / width + 8.0 * roundoff * bins) * (1.0 + 1e-6)
    narrow = narrow | (margin > 0.25)
    stretch = np.where(narrow, 0.0, 1.0 / width)
    return narrow, stretch.astype(dtype), np.where(narrow, 0.0, margin).astype(dtype)


def _key_values(
    values: np.ndarray, first: Any, stretch: Any, margin: Any, out: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """The keys of ``_bin_keys`` as whole numbers of ``values``' dtype, in ``out[1]`` (``out[0]`` is scratch).

    ``out`` holds two arrays of ``values``' shape and dtype (or slices of them), so that a caller binning
    chunk after chunk reuses the same memory instead of asking for fresh pages each time. Seven float passes
    and no conversion: turning floats into integers is the slowest pass there is, and the caller does it
    once for its own key (``_largest_bin_bounds``) or not at all.
    """
    position, keys = out
    np.subtract(values, first, out=position)
    position *= stretch
    np.subtract(position, margin, out=keys)
    position += margin
    np.trunc(keys, out=keys)
    np.trunc(position, out=position)
    keys += position
    return keys


def _bin_keys(values: np.ndarray, first: Any, stretch: Any, margin: Any) -> np.ndarray:
    """2·b for a value certainly in bin b, 2·b + 1 for one in doubt between bins b and b + 1 (np.intp).

    With p the value's position in bin units (value − first, stretched: 0 .. bins), the key is
    trunc(p − margin) + trunc(p + margin): the two agree unless an edge lies within the margin of p, and
    differ by at most 1 since the margin is at most about 1/4 (see ``_frame``). When the values lie between
    ``first`` and the max the stretch was made from, p ≥ 0 and p ≤ bins·(1 + 3.1·u), u the unit roundoff
    of their dtype (three roundings: value − first, the stretch and the product). A margin of at least
    8·u·bins then keeps trunc(p − margin) in 0 .. bins − 1, and one of at most about 1/4 keeps p − margin
    above −1, where trunc is 0, and p + margin below bins + 1. So the keys run from 0 to 2·bins − 1. An
    edge within the margin of 0 or of bins is an outer edge, which holds every value in: key 0 is bin 0
    for sure, and key 2·bins − 1 (trunc(p − margin) = bins − 1, trunc(p + margin) = bins) is the last bin
    for sure.
    """
    scratch = (np.empty_like(values), np.empty_like(values))
    return _key_values(values, first, stretch, margin, scratch).astype(np.intp)


def _column_extreme(values: np.ndarray, extreme: np.ufunc) -> np.ndarray:
    """The min (``np.minimum``) or max (``np.maximum``) of each column of a 2-D array.

    The same result as ``values.min(axis=0)``, about twice as fast on a tall array with few columns, which
    that reduction walks one short row per inner loop: folding the bottom half of the rows onto the top
    half, again and again, has each ufunc call cover many rows at once.
    """
    rows = len(values)
    half = rows // 2
    if half == 0:
        return values[0].copy()
    folded = extreme(values[:half], values[half : 2 * half])
    if rows % 2:
        extreme(folded[0], values[-1], out=folded[0])
    rows = half
    while rows > 1:
        half = rows // 2
        extreme(folded[:half], folded[half : 2 * half], out=folded[:half])
        if rows % 2:
            extreme(folded[0], folded[rows - 1], out=folded[0])
        rows = half
    return folded[0]


def _largest_bin_bounds(projections: _Projections, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Per direction (column of ``proj``), bounds low ≤ the loop's largest bin count ≤ high.

    A value in doubt (see ``_frame``) may be in either bin next to its edge: it counts towards the high
    bound of both and the low bound of neither. A direction whose bins are too narrow gets 0 and n.

    np.bincount counts the keys of ``_bin_keys`` of every direction at once, and it holds the GIL, so the
    fewer keys it counts the better. Two directions share one key when there are few bins: a point's keys
    a and b along directions 2j and 2j + 1 make the key (j·slots + a)·slots + b, slots = 2·bins; each
    direction's counts are then a sum over the other's. With many bins or directions (more than
    _PAIRED_SLOTS counts that way), each direction has a key of its own, j·slots + a. Each thread gathers
    the keys of its chunks and counts them _COUNTED_KEYS at a time.
    """
    proj, gap, magnitude, first, last = projections
    n, directions = proj.shape
    narrow, stretch, margin = _frame(first, last, gap, magnitude, bins, proj.dtype.type)
    slots = 2 * bins
    paired = directions > 1 and -(-directions // 2) * slots * slots <= _PAIRED_SLOTS
    width = 2 if paired else 1  # directions per key
    columns = -(-directions // width)  # keys per point
    span = slots**width  # the values one column of keys takes: 0 .. span − 1
    offsets = np.arange(columns, dtype=np.intp) * span

    def tally(counts: np.ndarray | None, keys: np.ndarray) -> np.ndarray:
        """``counts`` plus the count of each key (np.bincount's own array the first time: a fresh array of
        zeros would cost a page fault per 4 KiB, as much as the counting)."""
        more = np.bincount(keys.ravel(), minlength=columns * span)
        if counts is None:
            return more
        counts += more
        return counts

    def count(starts: range) -> np.ndarray:
        """The keys of the chunks starting at ``starts``, counted."""
        counts = None
        rows = min(n, _CHUNK)
        scratch = (
            _kept_array("bin position", (rows, directions), proj.dtype),
            _kept_array("bin keys", (rows, columns * width), proj.dtype),
        )
        scratch[1][:, directions:] = 0  # a phantom last direction, paired with an odd one out: always key 0
        pair = _kept_array("bin pairs", (rows, columns), proj.dtype) if paired else None
        share = min(n, len(starts) * _CHUNK)  # rows of keys this thread makes
        gathered = _kept_array("bin gathered", (min(share, max(rows, _COUNTED_KEYS // columns)), columns), np.intp)
        filled = 0
        for start in starts:  # each chunk is a handful of vectorised passes over points x directions
            values = proj[start : start + _CHUNK]
            m = len(values)
            keys = scratch[1][:m]
            _key_values(values, first, stretch, margin, (scratch[0][:m], keys[:, :directions]))
            if paired:
                np.multiply(keys[:, 0::2], slots, out=pair[:m])  # whole numbers under 2^18: exact in float32
                pair[:m] += keys[:, 1::2]
                keys = pair[:m]
            if filled + m > len(gathered):
                counts = tally(counts, gathered[:filled])
                filled = 0
            np.copyto(gathered[filled : filled + m], keys, casting="unsafe")
            gathered[filled : filled + m] += offsets
            filled += m
        return tally(counts, gathered[:filled])

    # The passes of _key_values let go of the GIL, so the threads compute keys side by side.
    counted, *others = _shared_out(count, range(0, n, _CHUNK))
    for more in others:
        counted += more  # in place: np.sum over the list would stack the counts in a fresh array first
    counted = counted.reshape(columns, *(slots,) * width)
    if paired:
        counts = np.empty((columns * 2, slots), np.intp)
        counts[0::2] = counted.sum(axis=2)
        counts[1::2] = counted.sum(axis=1)
        counts = counts[:directions]
    else:
        counts = counted
    low = counts[:, 0::2].copy()
    low[:, -1] += counts[:, -1]  # key 2·bins − 1 is the last bin for sure
    doubt = counts[:, 1:-1:2]  # in doubt between bins b and b + 1
    high = low.copy()
    high[:, :-1] += doubt
    high[:, 1:] += doubt
    return np.where(narrow, 0, low.max(axis=1)), np.where(narrow, n, high.max(axis=1))


def _certain(keys: np.ndarray, bins: int) -> np.ndarray:
    """Which keys of ``_bin_keys`` place their value in one bin for sure."""
    return ((keys & 1) == 0) | (keys == 2 * bins - 1)


def _refined_max(
    cloud: np.ndarray, unit: np.ndarray, column: np.ndarray, gap: float, magnitude: float, bins: int
) -> int | None:
    """The loop's largest bin count along one direction, from its float32 projections ``column``.

    Only the values in doubt, and the values that may be the min or the max, are projected again, in
    float64; the loop's float64 value is within ``close`` (γ of both float64 dot products) of those, so
    they place the edges and settle the doubtful values. None when float64 leaves a value in doubt too.
    """
    first, last = column.min(), column.max()
    narrow, stretch, margin = _frame(first, last, gap, magnitude, bins, np.float32)
    if narrow:
        return None
    keys = _bin_keys(column, first, stretch, margin)
    certain = _certain(keys, bins)
    counts = np.bincount(keys[certain] >> 1, minlength=bins)
    wide = column.astype(np.float64)
    # The loop's min is the float64 value of a point whose float32 value is within 2·gap of the min.
    low_end = wide <= float(first) + 2.5 * gap
    high_end = wide >= float(last) - 2.5 * gap
    redo = np.flatnonzero(~certain | low_end | high_end)
    values = cloud[redo].astype(np.float64, copy=False) @ unit
    close = 2.0 * _gamma(cloud.shape[1] + 1, _ROUNDOFF_64) * magnitude * (1.0 + 1e-6) + 1e-300
    first64, last64 = values[low_end[redo]].min(), values[high_end[redo]].max()
    narrow, stretch, margin = _frame(first64, last64, close, magnitude, bins, np.float64)
    if narrow:
        return None
    # first64 and last64 are the extremes of the values near the ends only. The values in doubt lie near
    # interior edges, well inside them; the clip keeps their keys in range all the same (a value beyond an
    # outer edge would belong to that outer bin).
    keys = np.clip(_bin_keys(values[~certain[redo]], first64, stretch, margin), 0, 2 * bins - 1)
    if not _certain(keys, bins).all():
        return None
    return int((counts + np.bincount(keys >> 1, minlength=bins)).max())


def coherence(points: Any, directions: int = 100, bins: int = 20, seed: int = 0) -> tuple[float, list[float]]:
    """coh★ and v★: the largest share of points that fall in one of ``bins`` bins of a projection.

    ``directions`` unit vectors are drawn from a generator seeded with ``seed``; the cloud is projected on
    each of them and each projection is cut into ``bins`` equal bins between its min and max, as
    np.histogram does. coh★ is the largest bin fraction over all directions and v★ the direction that
    achieved it (the first one on a tie). A cloud with fewer than one point has coh★ 0 and no v★.

    The result is exactly that of ``coherence_loop``. All directions are projected at once with float32
    matrix products; each value carries a proven bound on its distance from the loop's float64 value, which
    gives every direction a low and a high bound on its largest bin count. Only the directions whose high
    bound reaches the best low bound, and whose bounds differ, are looked at again: the few values in doubt
    are projected in float64 (``_refined_max``), and if even that leaves one in doubt the direction is
    projected and binned exactly as the loop does. In practice that is one or two directions out of a hundred.
    """
    cloud = as_cloud(points, check_finite=False, keep_float32=True)
    if len(cloud) == 0 or cloud.shape[1] == 0:
        return 0.0, []
    if directions < 1 or bins < 1:
        raise ValueError(f"coherence needs at least one direction and one bin, got {directions} and {bins}")
    units = random_directions(directions, cloud.shape[1], seed)
    projected = _float32_projections(cloud, units)
    if projected is None:  # non-finite values (an error) or values beyond float32: every direction in float64
        cloud = cloud.astype(np.float64, copy=False)  # widened once, not once per direction
        _check_finite(cloud)
        _check_projectable(cloud)
        low, high = np.zeros(directions, dtype=np.intp), np.full(directions, len(cloud))
    else:
        low, high = _largest_bin_bounds(projected, bins)
    best, winner = -1, 0
    for k in np.flatnonzero(high >= low.max()):  # every other direction is beaten by the best low bound
        largest = int(low[k]) if low[k] == high[k] else None
        if largest is None and projected is not None:
            column = np.ascontiguousarray(projected.values[:, k])  # read several times: one strided pass to copy it
            largest = _refined_max(cloud, units[k], column, projected.gap, projected.magnitude, bins)
        if largest is None:
            largest = _direction_max(cloud, units[k], bins)
        if largest > best:
            best, winner = largest, int(k)
    return best / len(cloud), units[winner].tolist()


def coherence_loop(points: Any, directions: int = 100, bins: int = 20, seed: int = 0) -> tuple[float, list[float]]:
    """The same coh★ and v★ as ``coherence`` with one np.histogram call per direction (the reference)."""
    cloud = as_cloud(points)
    if len(cloud) == 0 or cloud.shape[1] == 0:
        return 0.0, []
    units = random_directions(directions, cloud.shape[1], seed)
    best, winner = -1, 0
    for k in range(directions):
        largest = _direction_max(cloud, units[k], bins)
        if largest > best:
            best, winner = largest, k
    return best / len(cloud), units[winner].tolist()


def epsilon_net_guarantee(
    dims: int, points: int, directions: int, bins: int, epsilon: float = 0.1, delta: float = 0.05
) -> dict[str, Any]:
    """What M random directions guarantee about coh★ (seed section 19.3), as metadata.

    An ε-net of the unit sphere S^(d-1) needs at most N(ε) = (1 + 2/ε)^d caps of radius ε. M uniform
    directions hit every cap with probability ≥ 1 − δ once M ≥ N·ln(N/δ); then the sampled coh★ is within
    L·ε of the true maximum, with L = 2·√n / B the Lipschitz bound of the bin fraction in the direction.
    The numbers grow as a power of d, so they are reported through their logarithm and as floats (inf when
    they overflow); in high dimension the guarantee is honestly reported as not met.
    """
    log_cover = dims * math.log1p(2.0 / epsilon)
    log_required = log_cover + math.log(log_cover - math.log(delta))
    lipschitz = 2.0 * math.sqrt(max(points, 0)) / bins
    return {
        "epsilon": epsilon,
        "delta": delta,
        "covering_number": math.exp(log_cover) if log_cover < 700 else math.inf,
        "log10_covering_number": log_cover / math.log(10),
        "required_samples": math.ceil(math.exp(log_required)) if log_required < 700 else math.inf,
        "directions": directions,
        "lipschitz": lipschitz,
        "approximation_error": min(1.0, lipschitz * epsilon),
        "guarantee_met": log_required < 700 and directions >= math.exp(log_required),
    }


def coherence_with_guarantees(
    points: Any, directions: int = 100, bins: int = 20, seed: int = 0, epsilon: float = 0.1, delta: float = 0.05
) -> tuple[float, list[float], dict[str, Any]]:
    """``coherence`` plus the ε-net metadata of ``epsilon_net_guarantee`` for this cloud."""
    cloud = as_cloud(points, keep_float32=True)  # float32 stays so for coherence, as when it is called alone
    coh, v_star = coherence(cloud, directions, bins, seed)
    meta = epsilon_net_guarantee(cloud.shape[1], len(cloud), directions, bins, epsilon, delta)
    return coh, v_star, meta


def compressibility_bytes(data: bytes) -> float:
    """r: the zlib compressed size over the raw size, clamped to [0, 1]; 1 means incompressible.

    zlib's default level (6). Level 9 squeezes out a few per cent more on data full of repeats (float32
    values widened to float64, small integers), and takes five to ten times as long on exactly that data:
    45 s instead of 4 s for a 10 000 x 768 cloud. Data over ZLIB_BLOCK bytes is compressed in blocks of
    that size, on as many threads as there are cores; each block loses only the first 32 KiB of history
    (DEFLATE's window), and the result does not depend on the number of threads.
    """
    if not data:
        raise ValueError("cannot measure the compressibility of empty data")
    view = memoryview(data)
    blocks = [view[start : start + ZLIB_BLOCK] for start in range(0, len(view), ZLIB_BLOCK)]
    if len(blocks) == 1:
        compressed = len(zlib.compress(view, ZLIB_LEVEL))
    else:
        with ThreadPoolExecutor(min(len(blocks), os.cpu_count() or 1)) as pool:  # zlib lets go of the GIL
            compressed = sum(pool.map(lambda block: len(zlib.compress(block, ZLIB_LEVEL)), blocks))
    return min(1.0, max(0.0, compressed / len(view)))


def product_quantise(
    embeddings: Any, subspaces: int = PQ_SUBSPACES, codes: int = PQ_CODES, seed: int = 0
) -> np.ndarray:
    """PQ codes (points x subspaces, uint8 for ≤ 256 codes): seeded k-means in each block of coordinates.

    Each block gets min(``codes``, points) centroids, fitted on the cloud itself (k-means2, 10 iterations,
    seeded initial points), so the codes need no reference corpus and suit any embedding model.
    """
    from scipy.cluster.vq import kmeans2  # only the embedding path needs scipy

    cloud = as_cloud(embeddings)
    n, dims = cloud.shape
    if n < 2 or dims < subspaces:
        raise ValueError(f"product quantisation needs ≥ 2 points and ≥ {subspaces} dimensions, got {n} x {dims}")
    k = min(codes, n)
    rng = np.random.default_rng(seed)
    out = np.empty((n, subspaces), dtype=np.uint8 if k <= 256 else np.uint16)
    for j, block in enumerate(np.array_split(cloud, subspaces, axis=1)):  # 8 subspaces, each vectorised
        with warnings.catch_warnings():
            # Repetitive data has fewer distinct vectors than codes: empty clusters are expected, not an error.
            warnings.simplefilter("ignore", UserWarning)
            _, labels = kmeans2(block, k, iter=10, minit="points", rng=rng)
        out[:, j] = labels
    return out


def pq_codes_for(points: int, codes: int = PQ_CODES) -> int:
    """The codes per block r uses for a cloud of ``points``: ``codes``, or a quarter of the points if fewer."""
    return max(2, min(codes, points // 4))


def compressibility_embeddings(
    embeddings: Any, subspaces: int = PQ_SUBSPACES, codes: int = PQ_CODES, seed: int = 0, codebook: Any = None
) -> float:
    """r of embeddings: product-quantise them to a finite alphabet, then LZ (zlib) on the code stream.

    - with a ``codebook`` (``agent_client.codebook.Codebook``, fitted once on a reference corpus and stored
      in a versioned file): each token's code in each block is its nearest centroid there. One fixed alphabet
      for every cloud, whatever its length: a cloud that repeats a short pattern reuses a few codes, a varied
      one spends many. The text path uses the codebook the agent ships for its default model;
    - without one: k = ``pq_codes_for(n)`` codes per block (8, or n // 4 below 32 points), fitted on the cloud
      itself (for embeddings of a model no codebook was fitted for);
    - the stream is block-major: the codes of every point in block 1, then in block 2, ... A cloud that repeats
      a pattern of p points repeats every block's sequence with period p, and LZ finds those runs even when
      some blocks of a repeated point got another code (token-major order would need three blocks in a row
      to agree);
    - r = ``compressibility_bytes`` of that stream (one byte per code).
    Known limit of the per-cloud fit: a tight cluster (a point repeated with tiny noise) may be split between
    several codes when the cloud has fewer clusters than codes, and its copies then differ in the stream.
    """
    cloud = as_cloud(embeddings)
    if codebook is not None:
        if len(cloud) == 0:
            raise ValueError("product quantisation needs at least one point")
        stream = codebook.encode(cloud)
    else:
        stream = product_quantise(cloud, subspaces, pq_codes_for(len(cloud), codes), seed)
    return compressibility_bytes(np.ascontiguousarray(stream.T).tobytes())
