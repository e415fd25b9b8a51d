"""The SQL warehouse: schema, migrations, set-based upserts and reads."""

from abm_sla.warehouse.store import Warehouse

__all__ = ["Warehouse"]
