-- Nothing to change on SQLite: its json_each is built in. (PostgreSQL's stand-in loses STRICT in its 0017, so that
-- it is inlined.) Both backends keep the same schema versions, which an export and its import compare.
SELECT 1;
