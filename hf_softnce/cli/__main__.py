import sys

from hf_softnce.cli.app import main

sys.exit(main())
