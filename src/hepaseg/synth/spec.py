"""What a synthetic cohort holds: split sizes, acquisition ranges, rater profiles (frozen dataclasses).

A cohort is fully described by a ``CohortSpec`` and a seed. ``default_spec()`` is the paper's
cohort (58 train, 5 val, 19 test, 25 unlabelled at clinical resolution); ``small_spec()`` a handful
of coarse cases for tests. Other code asks for its own size with ``dataclasses.replace``, e.g.
``replace(default_spec(), n_train=24, n_val=3, n_test=8, n_unlabeled=2, matrix_max=256)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SPLITS = ("train", "val", "test", "unlabeled")


@dataclass(frozen=True)
class RaterProfile:
    """How one simulated human rater contours lesions (all distances in in-plane voxels).

    Attributes:
        name: rater id written to the manifest ("R1", ...).
        splits: the splits this rater contours.
        rim_vox: personal boundary bias; > 0 draws outside the true edge, < 0 inside.
        rim_sd_vox: slice-to-slice standard deviation of the boundary offset.
        wobble_vox: amplitude of the smooth in-plane wobble of the contour within a slice.
        level: partial-volume fraction at which the rater sees the edge (0.5 = true edge).
        level_sd: slice-to-slice standard deviation of ``level``.
        d50_mm: effective lesion diameter seen with probability 0.5 (small / faint lesions are missed).
        slope: steepness of detection in log-diameter (probit units per e-fold).
        merge_gap_mm: lesions closer than this (surface to surface) may be drawn as one.
        merge_probability: chance that such a pair is merged.
        false_positives: mean number of non-lesions (vessels cut across) contoured per case.
    """

    name: str
    splits: tuple[str, ...]
    rim_vox: float
    rim_sd_vox: float
    wobble_vox: float
    level: float
    level_sd: float
    d50_mm: float
    slope: float
    merge_gap_mm: float
    merge_probability: float
    false_positives: float


def default_raters() -> tuple[RaterProfile, ...]:
    """R1 (semi-automatic tool, every labelled case), R2 and R3 (test cases only)."""
    labelled = ("train", "val", "test")
    return (
        RaterProfile("R1", labelled, rim_vox=1.0, rim_sd_vox=0.4, wobble_vox=0.5, level=0.45, level_sd=0.08,
                     d50_mm=6.5, slope=3.5, merge_gap_mm=3.0, merge_probability=0.35, false_positives=0.4),
        RaterProfile("R2", ("test",), rim_vox=-0.6, rim_sd_vox=0.7, wobble_vox=0.8, level=0.55, level_sd=0.12,
                     d50_mm=7.5, slope=3.5, merge_gap_mm=4.0, merge_probability=0.5, false_positives=0.5),
        RaterProfile("R3", ("test",), rim_vox=0.4, rim_sd_vox=0.6, wobble_vox=0.7, level=0.5, level_sd=0.1,
                     d50_mm=6.0, slope=3.5, merge_gap_mm=3.0, merge_probability=0.3, false_positives=0.5),
    )


@dataclass(frozen=True)
class CohortSpec:
    """A synthetic cohort: split sizes, acquisition ranges and raters.

    Attributes:
        name: dataset name written to the manifest.
        n_train, n_val, n_test, n_unlabeled: cases per split (ids run over the splits in this order).
        n_val_late: more validation cases after all of those (their ids follow the unlabelled cases), so
            that a cohort given more validation cases keeps every other case as it was.
        inplane_mm: range of the in-plane voxel size drawn per case (raised where the body would
            not fit ``matrix_max`` voxels).
        slice_mm: range of the slice spacing (= thickness) drawn per case.
        slices: allowed number of slices; the z coverage is the liver plus margins, clipped to this.
        matrix_max: largest in-plane matrix (rows and columns, multiples of 16).
        lesions_max: most lesions per case.
        raters: rater profiles, in manifest order.
        randomized: the liver model's randomised cohort (``synth.appearance``, ``synth.distort``): every
            case's tissue signals, signal chain, field of view and shape deformation drawn at random;
            needs ``raters == ()`` (its cases are for the liver, and deformed after their lesions).
    """

    name: str = "hepaseg-synthetic-hbp"
    n_train: int = 58
    n_val: int = 5
    n_test: int = 19
    n_unlabeled: int = 25
    n_val_late: int = 0
    inplane_mm: tuple[float, float] = (0.74, 1.76)
    slice_mm: tuple[float, float] = (2.0, 5.0)
    slices: tuple[int, int] = (40, 120)
    matrix_max: int = 512
    lesions_max: int = 15
    raters: tuple[RaterProfile, ...] = field(default_factory=default_raters)
    randomized: bool = False

    def __post_init__(self) -> None:
        counts = (self.n_train, self.n_val, self.n_test, self.n_unlabeled, self.n_val_late)
        if min(counts) < 0 or sum(counts) == 0:
            raise ValueError(f"split sizes must be >= 0 and not all 0, got {counts}")
        if self.matrix_max < 32 or self.matrix_max % 16:
            raise ValueError(f"matrix_max must be a multiple of 16 and >= 32, got {self.matrix_max}")
        if self.randomized and self.raters:
            raise ValueError("a randomized cohort has no raters (raters=())")
        for name, (lo, hi) in (("inplane_mm", self.inplane_mm), ("slice_mm", self.slice_mm),
                               ("slices", self.slices)):
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be an increasing positive range, got {(lo, hi)}")

    @property
    def n_cases(self) -> int:
        return self.n_train + self.n_val + self.n_test + self.n_unlabeled + self.n_val_late

    def split_of(self, index: int) -> str:
        """The split of case ``index`` (0-based): train cases first, then val, test, unlabelled, late val."""
        bounds = (self.n_train, self.n_val, self.n_test, self.n_unlabeled, self.n_val_late)
        for split, n in zip((*SPLITS, "val"), bounds):
            if index < n:
                return split
            index -= n
        raise IndexError("case index beyond the cohort")

    def raters_for(self, split: str) -> tuple[RaterProfile, ...]:
        """The raters that contour cases of ``split``, in manifest order."""
        return tuple(r for r in self.raters if split in r.splits)


def default_spec() -> CohortSpec:
    """The paper's cohort: 58 / 5 / 19 / 25 cases at clinical resolution."""
    return CohortSpec()


def small_spec() -> CohortSpec:
    """A handful of coarse cases (about 3 mm in-plane, 5-7 mm slices) made in seconds, for tests."""
    return CohortSpec(
        name="hepaseg-synthetic-hbp-small",
        n_train=4,
        n_val=1,
        n_test=2,
        n_unlabeled=1,
        inplane_mm=(2.8, 3.4),
        slice_mm=(5.0, 7.0),
        slices=(24, 48),
        matrix_max=128,
        lesions_max=8,
    )


def randomized_spec(n_train: int = 240, n_val: int = 16) -> CohortSpec:
    """The liver model's randomised cohort (``hepaseg synth --randomized``): in-plane 0.7-2 mm,
    slices 2-9 mm, every appearance drawn at random (``CohortSpec.randomized``), no raters."""
    return CohortSpec(name="hepaseg-synthetic-randomized", n_train=n_train, n_val=n_val, n_test=0, n_unlabeled=0,
                      inplane_mm=(0.7, 2.0), slice_mm=(2.0, 9.0), slices=(12, 160), matrix_max=512, lesions_max=6,
                      raters=(), randomized=True)
