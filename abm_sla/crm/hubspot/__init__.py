"""The HubSpot source on hubspot-api-client, by concept: ``login`` (tokens), ``query`` (objects, properties,
times), ``records`` (records → frames), ``events`` (marketing touches), ``errors`` and ``source`` (search paging,
associations, owners, calls)."""
