"""``python -m hf_softnce``: the ``hf-softnce`` console script."""

import sys

from hf_softnce.cli.app import main

sys.exit(main())
