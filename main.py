#!/usr/bin/env python
"""cdktf entry point: `cdktf synth`, `cdktf deploy active-active` ... The stacks live in harbor_ha/stacks/."""

import sys

from harbor_ha.app import main

if __name__ == "__main__":
    sys.exit(main())
