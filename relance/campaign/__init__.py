"""The campaign format: what a learning designer writes in `campaigns/<id>.yaml`, and
everything that reads it without a warehouse.

`model` (the pydantic models, the format's single definition), `loader` (files to models,
every problem located by file, line and field), the vocabulary the models are written in
(`conditions`, `audience_where`, `measures`, `values`, `reasons`, `testcases`), and what is
generated from them (`schema`, `reference`, `scaffold` and its models in `scaffolds/`).

May import: `warehouse` only. Everything else in relance imports it.
"""
