"""Lesion labelling and N:M correspondences.

Expected counts of the constructed configurations are derived by hand in the comments. Random
configurations are cross-checked against ``_naive_detect`` below: a deliberately slow, independent
implementation of METHOD.md section 8 with whole-volume passes per lesion and explicit enumeration
of every candidate subset.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage

from hepaseg.data.components import label
from hepaseg.evaluation.matching import Correspondence, detect, match_lesions


def line(*runs: tuple[int, int], length: int = 16) -> np.ndarray:
    """A (length, 1, 1) mask with voxels [start, stop) set for each run."""
    mask = np.zeros((length, 1, 1), dtype=bool)
    for start, stop in runs:
        mask[start:stop] = True
    return mask


def counts(d) -> tuple[int, int, int, int, int]:
    return d.tp, d.fp, d.fn, d.merges, d.splits


# --- labelling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_labels_follow_the_scan_order_i_fastest(seed):
    mask = np.random.default_rng(seed).random((9, 8, 7)) < 0.2
    # scipy numbers in C order; on the transposed array that is the scan order with i fastest
    theirs, n_theirs = ndimage.label(mask.T, structure=np.ones((3, 3, 3)))
    for layout in (np.ascontiguousarray, np.asfortranarray):
        ours, n = label(layout(mask), 26)
        assert n == n_theirs
        np.testing.assert_array_equal(ours, theirs.T)


def test_connectivity():
    mask = np.zeros((3, 3, 3), dtype=bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # corner neighbours
    assert label(mask, 26)[1] == 1
    assert label(mask, 18)[1] == 2
    assert label(mask, 6)[1] == 2
    with pytest.raises(ValueError):
        label(mask, 8)


# --- constructed configurations ----------------------------------------------------------------


def test_one_to_one():
    # ref 0-3, pred 1-4: |I| = 3, Dice = 6 / 8
    d = detect(line((0, 4)), line((1, 5)))
    assert counts(d) == (1, 0, 0, 0, 0)
    assert (d.n_ref, d.n_pred) == (1, 1)
    assert d.correspondences == (Correspondence((1,), (1,), 0.75, True, (4,), 4),)
    assert (d.recall, d.precision, d.f1) == (1.0, 1.0, 1.0)


def test_one_to_two_is_a_split():
    # ref 0-5 (6 voxels); pred p1 = 0-1, p2 = 4-5. p2 first: ({1}, {p2}) Dice 4/8;
    # T grows to {p1, p2}: ({1}, {p1, p2}) Dice 8/10 -> TP 1, split 1.
    d = detect(line((0, 6)), line((0, 2), (4, 6)))
    assert counts(d) == (1, 0, 0, 0, 1)
    assert d.correspondences[0].pred_ids == (1, 2)
    assert d.correspondences[0].dice == pytest.approx(0.8)


def test_two_to_one_is_a_merge():
    # ref r1 = 0-1, r2 = 4-5; pred 0-5. Candidates {r1}, {r2}: 4/8; {r1, r2}: 8/10.
    d = detect(line((0, 2), (4, 6)), line((0, 6)))
    assert counts(d) == (2, 0, 0, 1, 0)
    assert d.correspondences[0].ref_ids == (1, 2)
    assert d.correspondences[0].ref_voxels == (2, 2)


def test_two_to_two():
    # ref r1 = 0-3, r2 = 5-8; pred p1 = 0-1, p2 = 3-7.
    # p2 first, T = {p2}: {r1} 2/9, {r2} 6/9, {r1, r2} 8/13.
    # T = {p1, p2} (7 voxels): {r1} 6/11, {r2} 6/11, {r1, r2} 12/15 = 0.8 -> best.
    # TP 2, merges 2 - 1 = 1, splits max(0, 2 - 2) = 0.
    d = detect(line((0, 4), (5, 9)), line((0, 2), (3, 8)))
    assert counts(d) == (2, 0, 0, 1, 0)
    assert d.correspondences[0].dice == pytest.approx(0.8)


def test_no_overlap():
    d = detect(line((0, 2)), line((5, 7)))
    assert counts(d) == (0, 1, 1, 0, 0)
    assert [c.kind for c in d.correspondences] == ["fp", "fn"]
    assert (d.recall, d.precision, d.f1) == (0.0, 0.0, 0.0)


def test_below_threshold():
    # ref 0-9 (10 voxels), pred 9-12 (4 voxels): |I| = 1, Dice 2/14 = 0.143 <= 0.2.
    d = detect(line((0, 10)), line((9, 13)))
    assert counts(d) == (0, 1, 1, 0, 0)
    rejected, missed = d.correspondences
    assert rejected == Correspondence((1,), (1,), pytest.approx(2 / 14), False, (10,), 4)
    assert rejected.kind == "fp" and missed.kind == "fn" and missed.ref_ids == (1,)
    # the same pair passes a lower threshold
    assert counts(detect(line((0, 10)), line((9, 13)), threshold=0.1)) == (1, 0, 0, 0, 0)


def test_a_used_reference_lesion_leaves_later_predictions_false_positive():
    # ref 3-8; pred p1 = 0-3, p2 = 5-8. p2 first: ({r1}, {p2}) 8/10 beats ({r1}, {p1, p2}) 10/14.
    # r1 is used up, so p1 then touches no available reference lesion: FP.
    d = detect(line((3, 9)), line((0, 4), (5, 9)))
    assert counts(d) == (1, 1, 0, 0, 0)
    assert [c.kind for c in d.correspondences] == ["tp", "fp"]


def test_best_subset_prefers_the_smaller_set():
    # ref r1 = 0-2 (3 voxels), r2 = 4-11 (8 voxels); pred 0-4 (5 voxels).
    # {r1}: 6/8 = 0.75, {r2}: 2/13, {r1, r2}: 8/16 = 0.5 -> S = {r1}; r2 missed.
    d = detect(line((0, 3), (4, 12)), line((0, 5)))
    assert counts(d) == (1, 0, 1, 0, 0)
    assert d.correspondences[0].ref_ids == (1,)


def test_empty_conventions():
    empty, lesion = line(), line((2, 4))
    both = detect(empty, empty)
    assert counts(both) == (0, 0, 0, 0, 0) and both.correspondences == ()
    assert math.isnan(both.recall) and math.isnan(both.precision) and math.isnan(both.f1)
    only_pred = detect(empty, lesion)
    assert counts(only_pred) == (0, 1, 0, 0, 0)
    assert math.isnan(only_pred.recall) and only_pred.precision == 0.0 and only_pred.f1 == 0.0
    only_ref = detect(lesion, empty)
    assert counts(only_ref) == (0, 0, 1, 0, 0)
    assert only_ref.recall == 0.0 and math.isnan(only_ref.precision) and only_ref.f1 == 0.0


def test_match_lesions_accepts_a_foreground_subset():
    rng = np.random.default_rng(3)
    ref, n_ref = label(rng.random((10, 10, 4)) < 0.15)
    pred, n_pred = label(rng.random((10, 10, 4)) < 0.15)
    voxels = np.flatnonzero((ref > 0) | (pred > 0))
    full = match_lesions(ref, pred, n_ref, n_pred)
    subset = match_lesions(ref.ravel()[voxels], pred.ravel()[voxels], n_ref, n_pred)
    assert full == subset


# --- random configurations vs a naive implementation -------------------------------------------


def _naive_detect(ref_labels: np.ndarray, pred_labels: np.ndarray, threshold: float = 0.2):
    """Slow reading of METHOD.md section 8: whole-volume masks per lesion, all subsets enumerated."""
    ref, pred = ref_labels.copy(), pred_labels.copy()

    def present(labels: np.ndarray, where: np.ndarray) -> list[int]:
        return sorted(int(v) for v in np.unique(labels[where]) if v != 0)

    def union_dice(ref_ids, pred_ids) -> float:
        a, b = np.isin(ref, ref_ids), np.isin(pred, pred_ids)
        return 2.0 * np.sum(a & b) / (np.sum(a) + np.sum(b))

    tp = fp = merges = splits = 0
    matched = []
    for p in sorted(present(pred_labels, pred_labels > 0), reverse=True):
        if not np.any(pred == p):
            continue
        t_ids, r_ids, stop, candidates = [p], [], 1, []
        while True:
            new_r = present(ref, np.isin(pred, t_ids))
            if len(new_r) == len(r_ids):
                break
            r_ids = new_r
            candidates += [(list(s), t_ids) for k in range(1, len(r_ids) + 1)
                           for s in itertools.combinations(r_ids, k)]
            new_t = present(pred, np.isin(ref, r_ids))
            if len(new_t) == stop or len(new_t) == len(t_ids):
                break
            stop, t_ids = len(r_ids), new_t
            candidates += [(list(s), t_ids) for k in range(1, len(r_ids) + 1)
                           for s in itertools.combinations(r_ids, k)]
        if not candidates:
            pred[pred == p] = 0
            fp += 1
            continue
        scores = [union_dice(s, t) for s, t in candidates]
        best = int(np.argmax(scores))  # first maximum
        if scores[best] > threshold:
            s, t = candidates[best]
            tp += len(s)
            merges += len(s) - 1
            splits += max(0, len(t) - len(s))
            matched.append((tuple(s), tuple(t)))
            ref[np.isin(ref, s)] = 0
            pred[np.isin(pred, t)] = 0
        else:
            t = candidates[-1][1]
            fp += len(t)
            pred[np.isin(pred, t)] = 0
    n_ref = len(present(ref_labels, ref_labels > 0))
    return (tp, fp, n_ref - tp, merges, splits), matched


def _blobs(rng: np.random.Generator, shape, n: int, radius: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for _ in range(n):
        centre = rng.integers(0, shape)
        half = rng.integers(0, radius + 1, size=3)
        mask[tuple(slice(max(c - h, 0), c + h + 1) for c, h in zip(centre, half))] = True
    return mask


@pytest.mark.parametrize("seed", range(40))
def test_random_configurations_match_the_naive_implementation(seed):
    rng = np.random.default_rng(seed)
    shape = (12, 12, 5)
    ref = _blobs(rng, shape, int(rng.integers(0, 10)), 2)
    pred = ref ^ _blobs(rng, shape, 4, 1) if seed % 3 == 0 else _blobs(rng, shape, int(rng.integers(0, 12)), 2)
    connectivity = (6, 18, 26)[seed % 3]
    threshold = (0.2, 0.5)[seed % 2]
    ref_labels, n_ref = label(ref, connectivity)
    pred_labels, n_pred = label(pred, connectivity)
    d = match_lesions(ref_labels, pred_labels, n_ref, n_pred, threshold)
    expected_counts, expected_matches = _naive_detect(ref_labels, pred_labels, threshold)
    assert counts(d) == expected_counts
    assert [(c.ref_ids, c.pred_ids) for c in d.correspondences if c.matched] == expected_matches
    assert sum(len(c.ref_ids) for c in d.correspondences if c.kind in ("tp", "fn")) == n_ref
    assert sum(len(c.pred_ids) for c in d.correspondences if c.kind == "fp") == d.fp
