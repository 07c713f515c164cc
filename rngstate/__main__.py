import sys

from rngstate.cli import main

# Guarded so that importing the module (documentation tools walk every submodule) runs nothing.
if __name__ == "__main__":
    sys.exit(main())
