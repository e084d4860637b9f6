"""Synthetic late hepatobiliary-phase MRI cohort with simulated raters (``hepaseg synth``).

The phantom follows shared/PHANTOM.md: fat-suppressed T1 with the liver as the brightest large
organ, dark vessels and lesions, partial volume over thick slices, bias field, Rician noise, integer
storage with arbitrary scale and offset, and three raters who disagree the way humans do.
``randomized_spec`` is the liver model's cohort instead: the same anatomy with every appearance drawn
at random (``appearance``, ``distort``; docs/liver-model.md).
"""

from .case import Case, make_case
from .cohort import write_case, write_cohort
from .spec import CohortSpec, RaterProfile, default_raters, default_spec, randomized_spec, small_spec

__all__ = [
    "Case",
    "CohortSpec",
    "RaterProfile",
    "default_raters",
    "default_spec",
    "make_case",
    "randomized_spec",
    "small_spec",
    "write_case",
    "write_cohort",
]
