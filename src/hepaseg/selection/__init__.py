"""Multi-model training (A1): successive halving over seeds, its schedule, state, figure and executors."""
