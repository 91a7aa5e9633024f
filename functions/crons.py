"""Crons of the bundled app."""

from reactive_store import Crons

from .webhooks import retryFailed

crons = Crons()
crons.interval("retry failed webhooks", minutes=1, fn=retryFailed)
