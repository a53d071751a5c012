"""The campaign format: what a learning designer writes in `campaigns/<id>.yaml`, and
everything that reads it without a warehouse.

May import: `warehouse` only. Everything else in relance imports it.
"""
