"""The use cases: the verbs the CLI, the API and the console call.

A service works on a session it is given and never commits (the caller owns the transaction,
``store.db.transaction``); it may import the store and the capabilities' rules, and nothing
above it (commands, api, jobs, demo) imports the other way round.
"""
