"""The ``files`` source: a CRM export folder of CSV files (the contract's section 2), read, validated and
stored chunk by chunk (see :mod:`abm_sla.crm.files.folder`)."""
