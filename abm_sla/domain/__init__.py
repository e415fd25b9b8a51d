"""The pure domain: business rules on DataFrames and values.

No database, network, clock or Prefect here (a test walks the imports); `as_of` is always passed in.
"""
