"""``python -m jaxmed ...`` is the ``jaxmed`` command line."""

import sys

from jaxmed.cli import main

sys.exit(main())
