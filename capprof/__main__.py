import sys

from capprof.cli import main

sys.exit(main())
