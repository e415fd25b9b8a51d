"""The Salesforce source on simple-salesforce, by concept: ``login`` (session, credentials, refresh tokens),
``query`` (objects, SOQL, Bulk 2.0 state), ``records`` (records → frames) and ``source`` (the paging source)."""
