"""The Mini Program client API ``/mp/{app_id}/…``: use cases (``login``, ``me``, ``profile``), the HTTP
surface (``http``: Powertools resolver, pydantic models in ``models``) and the tag-sync job (``tags``)."""
