"""The Convex sync protocol over WebSocket: a sans-IO core plus the tasks serving a socket.

`protocol` parses client messages strictly and builds server messages exactly, `session`
is one connection's protocol state (versions, query set, what was sent) with no sockets
and no awaits, and `timestamps` encodes wire timestamps; only `connection` does I/O, with
`receive` and `send` callables it is given. `protocol`, `session` and `timestamps` import
only the core modules; `connection` may also import `app`, `engine` and `live`.
"""
