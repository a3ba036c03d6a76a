"""The one SQLite database: schema, migrations, the group-commit writer and read queries."""
