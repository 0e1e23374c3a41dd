"""Who may do what: roles and the route policy, masking of personal data, password hashing,
tokens and the lockout rule. Pure rules: no database, no network (tested without either)."""
