"""`python -m endpointkit.cli ...`: the same as the `endpointkit` command."""

import sys

from endpointkit.cli import main

sys.exit(main())
