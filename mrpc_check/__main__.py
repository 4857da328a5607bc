import sys

from mrpc_check.cli import main

sys.exit(main())
