"""`python -m reactive_store` is the `reactive-store` command."""

from reactive_store.cli import main

raise SystemExit(main())
