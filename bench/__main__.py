"""`python -m bench [--quick] [--ours-only] [-o results.json]`."""

import sys

from bench.harness import main

sys.exit(main())
