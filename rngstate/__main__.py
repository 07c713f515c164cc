import sys

from rngstate.cli import main

sys.exit(main())
