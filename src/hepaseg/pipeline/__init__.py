"""Stages composed: the end-to-end study, the evaluation folder, and the demo."""
