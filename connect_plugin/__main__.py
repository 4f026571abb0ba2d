"""``python -m connect_plugin`` is ``connect-plugin``."""

import sys

from .cli import main

sys.exit(main())
