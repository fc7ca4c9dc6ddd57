import sys

from hanode.cli.main import main

sys.exit(main())
