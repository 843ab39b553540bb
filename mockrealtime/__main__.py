import sys

from mockrealtime.cli import main

sys.exit(main())
