"""The read verbs the API and the console share (the CLI's where it has one): queues, a case
and its timeline, the book, the fleet, alerts. Each takes the :class:`Viewer` the route
policy made and reaches only the rows of the viewer's scope; a row outside it is not found
(404), so a collector cannot learn whether another's case exists."""
