"""``python -m harbor_ha.cli``: the ``harbor-ha`` command."""

import sys

from harbor_ha.cli import main

sys.exit(main())
