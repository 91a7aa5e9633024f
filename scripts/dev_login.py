"""A development identity provider for trying the chat UI's sign-in: anyone may be anyone.

    .venv/bin/python scripts/dev_login.py              # serves http://127.0.0.1:3211
    AUTH_ISSUER=http://127.0.0.1:3211 AUTH_LOGIN_URL=http://127.0.0.1:3211/login ./scripts/dev
    .venv/bin/python scripts/dev_login.py token ada    # prints a token to paste instead

It is an OpenID issuer in miniature: `/.well-known/openid-configuration` and `/jwks.json`
(an ES256 key kept in `.reactive-store/dev-login/`, so tokens survive restarts), and a login
page (`/login?redirect_uri=...&state=...`) that asks for a name and redirects back with
`#id_token=<JWT>&state=...`, as a real provider's implicit flow does. Never run it where
anyone else can reach it: it signs whatever name it is given.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
KID = "dev-login-1"
AUDIENCE = "convex"
LIFETIME_S = 3600
PAGE = """<!doctype html><meta charset="utf-8"><title>Development sign-in</title>
<style>body{{font:15px system-ui;max-width:26rem;margin:12vh auto;padding:0 1rem}}
input,button{{font:inherit;padding:.45rem .6rem}}</style>
<h1>Development sign-in</h1><p>This provider signs any name: for trying things out only.</p>
<form action="/issue">{hidden}<label>Name <input name="user" required autofocus></label>
<button type="submit">Sign in</button></form>"""


class Issuer:
    """The signing key (created once in `folder`) and the tokens it signs."""

    def __init__(self, folder: Path, url: str) -> None:
        self.url = url.rstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        pem = folder / "key.pem"
        if not pem.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
            pem.chmod(0o600)
        loaded = serialization.load_pem_private_key(pem.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        self.key = loaded

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": KID, "alg": "ES256", "use": "sig"}]}

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "jwks_uri": f"{self.url}/jwks.json",
                "authorization_endpoint": f"{self.url}/login",
                "response_types_supported": ["id_token"],
                "id_token_signing_alg_values_supported": ["ES256"]}

    def token(self, name: str) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "sub": name, "name": name, "aud": AUDIENCE,
                  "iat": now, "exp": now + LIFETIME_S}
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": KID})


def handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self.answer(200, json.dumps(issuer.discovery()), "application/json")
            elif url.path == "/jwks.json":
                self.answer(200, json.dumps(issuer.jwks()), "application/json")
            elif url.path in ("/login", "/issue") and not back_to_http(query):
                self.answer(400, "redirect_uri must be an http(s) URL", "text/plain")
            elif url.path == "/login":
                hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" '
                                 f'value="{html.escape(v)}">' for k, v in query.items()
                                 if k in ("redirect_uri", "state"))
                self.answer(200, PAGE.format(hidden=hidden), "text/html; charset=utf-8")
            elif url.path == "/issue" and query.get("user", "").strip():
                back = {"id_token": issuer.token(query["user"].strip())}
                if "state" in query:
                    back["state"] = query["state"]
                self.answer(302, "", "text/plain",
                            location=f"{query['redirect_uri']}#{urlencode(back)}")
            else:
                self.answer(204 if url.path == "/favicon.ico" else 404, "", "text/plain")

        def answer(self, status: int, body: str, content_type: str,
                   location: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-store")
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def back_to_http(query: dict[str, str]) -> bool:
    return urlparse(query.get("redirect_uri", "")).scheme in ("http", "https")


def serve(issuer: Issuer, host: str, port: int) -> ThreadingHTTPServer:
    """The provider's HTTP server, bound (call `serve_forever` on it)."""
    return ThreadingHTTPServer((host, port), handler(issuer))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["serve", "token"], default="serve")
    parser.add_argument("name", nargs="?", help="with `token`: whose token to print")
    parser.add_argument("--port", type=int, default=3211)
    parser.add_argument("--dir", type=Path, default=ROOT / ".reactive-store" / "dev-login")
    ns = parser.parse_args()
    issuer = Issuer(ns.dir, f"http://127.0.0.1:{ns.port}")
    if ns.command == "token":
        if not ns.name:
            parser.error("token needs a NAME")
        print(issuer.token(ns.name))
        return
    server = serve(issuer, "127.0.0.1", ns.port)
    print(f"dev-login: serving {issuer.url}; start the app with\n"
          f"  AUTH_ISSUER={issuer.url} AUTH_LOGIN_URL={issuer.url}/login ./scripts/dev",
          flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
