"""People, roles, sessions: users, post offices, login and the role checks."""
