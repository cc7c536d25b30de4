"""``python -m spacer_cli``: the ``spacer`` command."""
import sys

from spacer_cli.spacer_command import main

sys.exit(main())
