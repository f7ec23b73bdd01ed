"""``python -m crs.cli``: the ``crs`` command without its console script."""
import sys

from crs.cli import main

sys.exit(main())
