import sys

from benchbarcode.cli import main

sys.exit(main())
