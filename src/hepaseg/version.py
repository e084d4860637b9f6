"""The package's version, read once from its installed metadata (``pyproject.toml`` is its one source).

Run from a source tree that was never installed (``PYTHONPATH=src``, as on the GPU machine) there is
no metadata; the version is then ``0+unknown`` (a valid PEP 440 local version that sorts first).
"""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("hepaseg")
except metadata.PackageNotFoundError:
    __version__ = "0+unknown"
