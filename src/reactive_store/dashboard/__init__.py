"""The dashboard's server side: the `_system/...` functions its pages subscribe to.

`system` registers them on the engine and keeps those over process state live; `data`,
`functions`, `logs`, `schedules` and `health` hold each page's functions; `readable`
turns values into editable JSON text and back. The page itself (HTML, JS, CSS) lives in
`reactive_store/static/dashboard/` and is served by `server.dashboard`. May import
everything up to `deployment`; imported by the server.
"""
