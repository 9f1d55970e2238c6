import sys

from shelfscan.cli import main

sys.exit(main())
