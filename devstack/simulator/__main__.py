"""``python -m devstack.simulator``: see ``devstack.simulator.cli``."""

import sys

from devstack.simulator.cli import main

sys.exit(main())
