"""``python -m bench``: the speed benchmark (see bench/perf.py)."""

import sys

from bench.perf import main

sys.exit(main())
