"""`python -m rnnlab ...`, as the `rnnlab` command: what `torchrun -m rnnlab train ...` runs."""

import sys

from rnnlab.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
