"""Everything that talks SQL: models, engine/session, repositories."""
