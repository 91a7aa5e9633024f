"""The app the snapshot tests export and import: references, int64, bytes, files."""

from __future__ import annotations

SCHEMA = """
from reactive_store import define_schema, define_table, v

schema = define_schema({
    "authors": define_table({"name": v.string()}).index("by_name", ["name"]),
    "books": define_table({
        "title": v.string(),
        "author": v.id("authors"),
        "copies": v.int64(),
        "price": v.optional(v.float64()),
        "blob": v.optional(v.bytes()),
        "extra": v.optional(v.any()),
        "cover": v.optional(v.id("_storage")),
    }).index("by_author", ["author"]),
})
"""

FUNCTIONS = """
from reactive_store import mutation, query, action, v

@mutation(args={"name": v.string()})
async def add_author(ctx, name):
    return await ctx.db.insert("authors", {"name": name})

@mutation(args={"title": v.string(), "author": v.id("authors"), "copies": v.int64()})
async def add_book(ctx, title, author, copies):
    return await ctx.db.insert("books", {"title": title, "author": author, "copies": copies})

@query(args={})
async def books(ctx):
    return await ctx.db.query("books").collect()

@mutation(args={"title": v.string(), "author": v.id("authors"), "cover": v.id("_storage")})
async def add_book_with_cover(ctx, title, author, cover):
    return await ctx.db.insert("books", {"title": title, "author": author, "copies": 1,
                                         "cover": cover})

@query(args={"id": v.id("authors")})
async def author(ctx, id):
    return await ctx.db.get(id)

@query(args={})
async def authors(ctx):
    return [{"name": a["name"]} for a in await ctx.db.query("authors").collect()]

@query(args={})
async def count(ctx):
    return float(len(await ctx.db.query("books").collect()))

@query(args={"id": v.id("_storage")})
async def file_url(ctx, id):
    return await ctx.storage.get_url(id)

@action(args={"text": v.string()})
async def store_text(ctx, text):
    return await ctx.storage.store(text.encode(), content_type="text/plain")
"""

FILES = {"schema/__init__.py": SCHEMA, "functions/library.py": FUNCTIONS}
