"""SQLite and keyring adapters: schema, migrations, repositories, secrets, settings."""
