"""``python -m warpinit``: the same as the ``warpinit`` command."""

import sys

from .cli import main

sys.exit(main())
