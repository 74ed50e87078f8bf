-- `json_each(text)` (0002) without STRICT. PostgreSQL inlines a SQL set-returning function into the query that
-- calls it only when the function is not STRICT; the strict one ran as a function call of its own, its body parsed
-- and planned again at every execution of every id-list query (a task list's tags, subscribers, comments and
-- relations). A NULL list still gives no rows: json_array_elements_text is strict itself.
CREATE OR REPLACE FUNCTION json_each(list TEXT) RETURNS TABLE (value BIGINT)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT e::BIGINT FROM json_array_elements_text(list::json) AS e $$;
