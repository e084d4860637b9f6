"""Package data: the models shipped with hepaseg (``liver/``: the default liver model)."""
