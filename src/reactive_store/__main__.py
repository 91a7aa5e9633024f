"""`python -m reactive_store` is the `reactive-store` command."""

from .cli import main

raise SystemExit(main())
