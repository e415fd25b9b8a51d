"""CRM sources: each yields pages of normalized frames (see ``abm_sla.domain.frames``)."""
