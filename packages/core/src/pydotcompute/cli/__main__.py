"""``python -m pydotcompute.cli``: the same as the ``pydotcompute`` command."""

import sys

from ._command import main

sys.exit(main())
