"""The benchmark in one command, the same as `tinyembed bench` (see src/tinyembed/profile/bench.py):

    python benchmarks/bench.py [--quick] [--json] [--out FILE] [--repeats N] [--threads N]
"""

import sys

from tinyembed.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
