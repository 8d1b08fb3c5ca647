-- Every statement that writes the change feed also notifies `keymint_changes`; Postgres delivers
-- the notification when the transaction commits (and folds repeats within one transaction), so a
-- replica listening wakes as soon as a change is visible instead of at its next poll.
CREATE FUNCTION keymint_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('keymint_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION keymint_notify_change();
