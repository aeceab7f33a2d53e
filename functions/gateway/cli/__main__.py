"""`python -m gateway.cli`: the same command line as `kiro-gateway`."""

import sys

from gateway.cli import main

sys.exit(main())
