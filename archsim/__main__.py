"""`python -m archsim`: the command line (archsim.cli)."""

import sys

from archsim.cli import main

sys.exit(main())
