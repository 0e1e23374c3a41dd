"""The routes of ``/api/v1`` by area; each module's ``router(context)`` builds its router."""
