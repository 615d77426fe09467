import sys

from oms_devtools.bench.run import main

sys.exit(main())
