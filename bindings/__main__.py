"""``python -m warpinit``: the same as the ``warpinit`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # not when a spawned process re-imports the main module
    sys.exit(main())
