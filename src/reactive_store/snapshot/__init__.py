"""Snapshots in Convex's ZIP format, and single-table files: export and import.

`zip_format` (entry paths and the exported-JSON line codec, no I/O), `archive` (reading and
writing the ZIP), `single_table` (JSONL, JSON array and CSV sources), `exporter` (a
consistent snapshot streamed into a ZIP), `importer` (validated, one transaction), `jobs`
(the server's export and import state for the official CLI), `progress` (the terminal bar).
May import everything up to `deployment`.
"""
