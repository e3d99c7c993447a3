import sys

from .cli import main
import os
if os.environ.get('LT_SWITCH'):
    sys.setswitchinterval(float(os.environ['LT_SWITCH']))

sys.exit(main())
