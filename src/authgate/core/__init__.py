"""Pure building blocks: no Flask, no SQLAlchemy, no globals. I/O only through objects passed in."""
