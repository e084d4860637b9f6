"""Lesion detection: connected components and N:M correspondences (METHOD.md section 8).

A lesion is a 3D connected component of a tumour mask (default 26-connectivity), labelled
(``data.components.label``) 1..n in the order of its first voxel when the volume is scanned i fastest, then j, then k (the
NIfTI storage order, and the memory order of every array ``hepaseg.io`` reads). Reference lesions
and predicted lesions are put into N:M correspondences exactly as the public ``evaluation.py`` of
Chlebus et al. (2018) does, so that the counts agree with it:

- Predicted lesions are taken in descending label order; a lesion already used is skipped.
- For an unused predicted lesion ``p`` a cluster grows: T = {p}; R = unused reference lesions
  overlapping T; every non-empty subset S of R paired with T is a candidate; T = unused predicted
  lesions overlapping R, and all subsets of R paired with the new T are candidates; repeat until R
  stops growing. Like the reference, the growth of T also ends when the new T has as many lesions
  as R had in the previous round (the reference's bookkeeping of its loop; it matters only for
  chains of at least two growth rounds).
- Each candidate is scored by Dice(union S, union T); the first maximum in the reference's
  enumeration order (round by round; within a round subsets by size, then lexicographically) wins.
  If it exceeds the threshold (0.2): TP += |S|, merges += |S| - 1, splits += max(0, |T| - |S|),
  and S and T are used up. Otherwise the predicted lesions of the last candidate (the whole final
  T) are false positives and used up; their reference lesions stay available.
- A predicted lesion touching no unused reference lesion is a false positive.
- FN = number of reference lesions - TP.

Everything after labelling works on a table of per-lesion voxel counts and pairwise overlaps built
in one pass over the foreground voxels. The best subset of a round is found without enumerating
subsets: Dice(S, T) = 2 sum(a_s) / (sum(b_s) + |T|) with a_s = |s & T| and b_s = |s| is maximised
by the prefix of R sorted by 2 a_s / b_s (descending), and the shortest maximising prefix is the
reference's first maximum (the unique smallest maximiser).

Per-case rates (conventions, pinned by tests):

- recall = TP / n_ref, NaN when there are no reference lesions;
- precision = TP / (TP + FP), NaN when there are no predicted lesions;
- F1 = 2 TP / (2 TP + FP + FN) (the harmonic mean of the two where both exist), NaN only when
  neither mask has a lesion. So a case with lesions only in the prediction has F1 0, and so does a
  case with lesions only in the reference.

NaN values are left out of means and paired tests. The reference ``evaluation.py`` returns counts
only; it defines none of these rates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..data.components import label, scan_order
from .metrics import dice_from_counts

Labels = NDArray[np.integer]  # 0 background, 1..n lesions; any shape


@dataclass(frozen=True)
class Correspondence:
    """One row of the lesion table.

    Attributes:
        ref_ids: reference lesion labels (ascending); empty for a predicted lesion touching no
            reference lesion.
        pred_ids: predicted lesion labels (ascending); empty for a missed reference lesion.
        dice: Dice of the union of ``ref_ids`` vs the union of ``pred_ids``: for a match the
            winning candidate; for rejected predicted lesions the best candidate's Dice (<= the
            threshold; ``ref_ids`` then lists every reference lesion the cluster touched, which
            stay available); 0.0 for a lone false positive or a missed lesion.
        matched: True for a true-positive correspondence.
        ref_voxels: voxel count of each reference lesion, aligned with ``ref_ids``.
        pred_voxels: total voxel count of the predicted lesions.
    """

    ref_ids: tuple[int, ...]
    pred_ids: tuple[int, ...]
    dice: float
    matched: bool
    ref_voxels: tuple[int, ...]
    pred_voxels: int

    @property
    def kind(self) -> str:
        """``tp`` (matched), ``fp`` (predicted lesions counted as false positives) or ``fn``."""
        if self.matched:
            return "tp"
        return "fp" if self.pred_ids else "fn"


@dataclass(frozen=True)
class Detection:
    """Lesion detection counts of one prediction against one reference.

    Attributes:
        n_ref: reference lesions.
        n_pred: predicted lesions.
        tp: reference lesions in a true-positive correspondence.
        fp: predicted lesions counted as false positives (the FP count, FPC).
        fn: ``n_ref - tp``.
        merges: sum over matches of ``|S| - 1`` (several reference lesions, one prediction).
        splits: sum over matches of ``max(0, |T| - |S|)``.
        correspondences: matches, rejected predicted lesions and missed reference lesions, in
            processing order (missed lesions last, ascending).
    """

    n_ref: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    merges: int
    splits: int
    correspondences: tuple[Correspondence, ...]

    @property
    def recall(self) -> float:
        """TP / n_ref; NaN without reference lesions."""
        return self.tp / self.n_ref if self.n_ref else math.nan

    @property
    def precision(self) -> float:
        """TP / (TP + FP); NaN without predicted lesions."""
        return self.tp / (self.tp + self.fp) if self.n_pred else math.nan

    @property
    def f1(self) -> float:
        """2 TP / (2 TP + FP + FN); NaN when neither mask has a lesion."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else math.nan


def detect(reference: ArrayLike, prediction: ArrayLike, connectivity: int = 26,
           threshold: float = 0.2) -> Detection:
    """Label both masks and match their lesions (see the module docstring).

    Args:
        reference: (i, j, k) reference mask; non-zero is tumour.
        prediction: predicted mask of the same shape.
        connectivity: 6, 18 or 26.
        threshold: a correspondence is a true positive if its Dice exceeds this value.

    Raises:
        ValueError: the shapes differ.
    """
    ref_labels, n_ref = label(reference, connectivity)
    pred_labels, n_pred = label(prediction, connectivity)
    if ref_labels.shape != pred_labels.shape:
        raise ValueError(f"mask shapes differ: {ref_labels.shape} vs {pred_labels.shape}")
    ref, pred = scan_order(ref_labels), scan_order(pred_labels)
    voxels = np.flatnonzero((ref != 0) | (pred != 0))
    return match_lesions(ref[voxels], pred[voxels], n_ref, n_pred, threshold)


def match_lesions(ref_labels: Labels, pred_labels: Labels, n_ref: int, n_pred: int,
                  threshold: float = 0.2) -> Detection:
    """N:M correspondences between labelled lesions.

    Args:
        ref_labels: reference labels (0 background, 1..n_ref), any shape; it may be restricted to
            a subset of voxels (e.g. the foreground of several masks) as long as the subset holds
            every lesion voxel of both masks.
        pred_labels: predicted labels over the same voxels.
        n_ref: number of reference lesions (labels 1..n_ref).
        n_pred: number of predicted lesions.
        threshold: Dice above which a correspondence is a true positive.

    Raises:
        ValueError: the label arrays differ in size.
    """
    ref = np.asarray(ref_labels).ravel().astype(np.int64, copy=False)
    pred = np.asarray(pred_labels).ravel().astype(np.int64, copy=False)
    if ref.shape != pred.shape:
        raise ValueError(f"label arrays differ in size: {ref.size} vs {pred.size}")
    table = _OverlapTable(ref, pred, n_ref, n_pred)
    return _Matcher(table, threshold).run()


class _OverlapTable:
    """Lesion volumes and the bipartite overlap graph, from one pass over the voxels."""

    def __init__(self, ref: NDArray[np.int64], pred: NDArray[np.int64], n_ref: int, n_pred: int):
        self.n_ref, self.n_pred = n_ref, n_pred
        self.ref_voxels = np.bincount(ref, minlength=n_ref + 1)[: n_ref + 1]
        self.pred_voxels = np.bincount(pred, minlength=n_pred + 1)[: n_pred + 1]
        both = (ref != 0) & (pred != 0)
        keys, counts = np.unique(ref[both] * (n_pred + 1) + pred[both], return_counts=True)
        self.ref_to_pred: list[dict[int, int]] = [{} for _ in range(n_ref + 1)]
        self.pred_to_ref: list[dict[int, int]] = [{} for _ in range(n_pred + 1)]
        for key, count in zip(keys.tolist(), counts.tolist()):
            r, p = divmod(key, n_pred + 1)
            self.ref_to_pred[r][p] = count
            self.pred_to_ref[p][r] = count


class _Matcher:
    """The reference's greedy clustering, on the overlap table instead of whole volumes."""

    def __init__(self, table: _OverlapTable, threshold: float):
        self.t = table
        self.threshold = threshold
        self.ref_used = np.zeros(table.n_ref + 1, dtype=bool)
        self.pred_used = np.zeros(table.n_pred + 1, dtype=bool)

    def run(self) -> Detection:
        t = self.t
        rows: list[Correspondence] = []
        tp = fp = merges = splits = 0
        for p in range(t.n_pred, 0, -1):
            if self.pred_used[p]:
                continue
            rounds = self._rounds(p)
            if not rounds:
                self.pred_used[p] = True
                fp += 1
                rows.append(self._row((), (p,), 0.0, False))
                continue
            best_dice, best_s, best_t = -1.0, (), ()
            for r_set, t_set in rounds:
                d, s = self._best_subset(r_set, t_set)
                if d > best_dice:
                    best_dice, best_s, best_t = d, s, t_set
            if best_dice > self.threshold:
                self.ref_used[list(best_s)] = True
                self.pred_used[list(best_t)] = True
                tp += len(best_s)
                merges += len(best_s) - 1
                splits += max(0, len(best_t) - len(best_s))
                rows.append(self._row(best_s, best_t, best_dice, True))
            else:
                last_r, last_t = rounds[-1]
                self.pred_used[list(last_t)] = True
                fp += len(last_t)
                rows.append(self._row(last_r, last_t, best_dice, False))
        missed = np.flatnonzero(~self.ref_used[1:]) + 1
        rows.extend(self._row((int(r),), (), 0.0, False) for r in missed)
        return Detection(n_ref=t.n_ref, n_pred=t.n_pred, tp=tp, fp=fp, fn=t.n_ref - tp,
                         merges=merges, splits=splits, correspondences=tuple(rows))

    def _row(self, ref_ids: Sequence[int], pred_ids: Sequence[int], d: float,
             matched: bool) -> Correspondence:
        return Correspondence(
            ref_ids=tuple(int(r) for r in ref_ids), pred_ids=tuple(int(p) for p in pred_ids),
            dice=float(d), matched=matched,
            ref_voxels=tuple(int(self.t.ref_voxels[r]) for r in ref_ids),
            pred_voxels=int(sum(int(self.t.pred_voxels[p]) for p in pred_ids)))

    def _neighbours(self, ids: tuple[int, ...], graph: list[dict[int, int]],
                    used: NDArray[np.bool_]) -> tuple[int, ...]:
        return tuple(sorted({n for i in ids for n in graph[i] if not used[n]}))

    def _rounds(self, p: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """The (R, T) pairs whose subsets S of R form the candidates, in the reference's order."""
        t = self.t
        preds: tuple[int, ...] = (p,)
        refs: tuple[int, ...] = ()
        stop_size = 1  # the reference's "test_size": 1, then the previous round's |R|
        rounds = []
        while True:
            grown_refs = self._neighbours(preds, t.pred_to_ref, self.ref_used)
            if len(grown_refs) == len(refs):
                break
            refs = grown_refs
            rounds.append((refs, preds))
            grown_preds = self._neighbours(refs, t.ref_to_pred, self.pred_used)
            if len(grown_preds) in (stop_size, len(preds)):
                break
            stop_size = len(refs)
            preds = grown_preds
            rounds.append((refs, preds))
        return rounds

    def _best_subset(self, refs: tuple[int, ...], preds: tuple[int, ...]) -> tuple[float, tuple[int, ...]]:
        """Max over non-empty S of R of Dice(union S, union T), and its smallest maximiser."""
        t = self.t
        pred_set = set(preds)
        overlap = np.array([sum(c for q, c in t.ref_to_pred[r].items() if q in pred_set) for r in refs],
                           dtype=np.int64)
        size = t.ref_voxels[list(refs)].astype(np.int64)
        t_size = int(t.pred_voxels[list(preds)].sum())
        order = np.argsort(-(2.0 * overlap / size), kind="stable")
        cum_overlap = np.cumsum(overlap[order])
        cum_size = np.cumsum(size[order])
        scores = 2.0 * cum_overlap / (cum_size + t_size)
        k = int(np.argmax(scores))
        chosen = tuple(sorted(refs[i] for i in order[: k + 1]))
        return dice_from_counts(int(cum_overlap[k]), int(cum_size[k]), t_size), chosen
