"""Segment cases with a trained model: tiling, the per-case predictor, the batch driver,
post-processing and the lesion table."""
