"""Synthetic late hepatobiliary-phase MRI cohort with simulated raters (``hepaseg synth``).

The phantom follows shared/PHANTOM.md: fat-suppressed T1 with the liver as the brightest large
organ, dark vessels and lesions, partial volume over thick slices, bias field, Rician noise, integer
storage with arbitrary scale and offset, and three raters who disagree the way humans do.
"""

from .case import Case, make_case
from .cohort import write_case, write_cohort
from .spec import CohortSpec, RaterProfile, default_raters, default_spec, small_spec

__all__ = [
    "Case",
    "CohortSpec",
    "RaterProfile",
    "default_raters",
    "default_spec",
    "make_case",
    "small_spec",
    "write_case",
    "write_cohort",
]
