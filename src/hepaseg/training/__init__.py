"""One training run (A2): patch sampling, augmentation, loss, checkpoints, validation."""
