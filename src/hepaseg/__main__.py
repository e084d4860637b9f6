"""``python -m hepaseg`` is the ``hepaseg`` command."""

import sys

from .cli import main

sys.exit(main())
