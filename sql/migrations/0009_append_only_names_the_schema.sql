-- audit.refuse_change() (0004) names every table it guards `audit.<table>`. Since 0008 it also
-- guards registry.promotion_history, whose refusals read "audit.promotion_history is
-- append-only". It now names each table with its own schema. 0004 stays as it was: applied
-- migrations are checksummed, so a fix is a new migration. CREATE OR REPLACE keeps the
-- function's owner, grants and the triggers that call it.
CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
