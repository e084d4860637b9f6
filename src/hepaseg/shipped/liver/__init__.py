"""The shipped liver model folder (``weights.safetensors``, ``config.json``, ``model.json``); see
``model.folder.shipped_liver_dir`` and docs/liver-model.md for how the weights are reproduced."""
