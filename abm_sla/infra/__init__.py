"""Infrastructure shared by every layer: settings, progress lines, fault injection, atomic files, shards.
"""
