"""Evaluation against several raters: metrics, N:M lesion matching, per-case results, statistics."""
