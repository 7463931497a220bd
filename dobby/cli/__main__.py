"""`python -m dobby.cli`."""

from dobby.cli.command import main

raise SystemExit(main())
