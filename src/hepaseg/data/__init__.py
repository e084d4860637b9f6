"""The dataset: the manifest (read and check), its discovery from case folders, the pre-processing cache."""
