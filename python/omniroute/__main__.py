"""``python -m omniroute``: the ``omniroute`` command."""

from omniroute.cli import main

raise SystemExit(main())
