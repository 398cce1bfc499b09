"""``python -m lora_theory.cli``: the same as the ``lora-theory`` console script."""

import sys

from . import main

sys.exit(main())
