"""``python -m snnplast ...``: the ``snnplast`` command, for environments without its script."""

import sys

from ._cli import main

sys.exit(main())
