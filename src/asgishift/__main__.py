"""``python -m asgishift``: the same command line as the ``asgishift`` script."""

from asgishift.cli import main

raise SystemExit(main())
