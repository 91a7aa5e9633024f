"""The Convex sync protocol over WebSocket: a sans-IO core plus the tasks serving a socket.

`protocol` parses client messages strictly, builds server messages exactly and encodes wire
timestamps; `session` is one connection's protocol state (versions, query set, what was
sent) with no sockets and no awaits. Both import only the core modules. Only `connection`
does I/O, with the `receive` and `send` callables it is given, its writes going through
`outbox` (the output queue, closing a client that stopped reading); it may also import
`app`, `engine`, `live` and `observe`.
"""
