"""Core layer: settings, input validation, data roots and write safety, lineage records, progress events.

Nothing here knows a method or a data kind; every other layer may import it.
"""
