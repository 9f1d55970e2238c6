-- The job queue contract: enqueue with a plain INSERT, one NOTIFY per statement,
-- at most one queued and one running scan per library.

ALTER TABLE shelfscan.jobs ADD COLUMN parent_id bigint REFERENCES shelfscan.jobs (id) ON DELETE CASCADE;
CREATE INDEX jobs_parent_idx ON shelfscan.jobs (parent_id) WHERE parent_id IS NOT NULL;

-- Safety nets for the dedupe rule (the trigger below keeps plain INSERTs from ever hitting them).
CREATE UNIQUE INDEX jobs_one_queued_scan ON shelfscan.jobs (library_id)
    WHERE state = 'queued' AND kind = 'scan_library';
CREATE UNIQUE INDEX jobs_one_running_scan ON shelfscan.jobs (library_id)
    WHERE state = 'running' AND kind = 'scan_library';

-- A scan request while one is queued for the same library is the same request: drop it
-- silently. The advisory lock serialises concurrent inserters so that the later one sees
-- the earlier one's committed row (each statement in a volatile function takes a fresh
-- snapshot under READ COMMITTED).
CREATE FUNCTION shelfscan.jobs_dedupe() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- NEW.library_id is a generated column, not yet computed in a BEFORE trigger.
    IF NEW.kind = 'scan_library' AND NEW.state = 'queued' AND NEW.payload ? 'library_id' THEN
        PERFORM pg_advisory_xact_lock(1399676259, hashtext(NEW.payload ->> 'library_id'));
        IF EXISTS (SELECT 1 FROM shelfscan.jobs
                   WHERE kind = 'scan_library' AND state = 'queued'
                     AND library_id = (NEW.payload ->> 'library_id')::bigint) THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER jobs_dedupe BEFORE INSERT ON shelfscan.jobs
    FOR EACH ROW EXECUTE FUNCTION shelfscan.jobs_dedupe();

-- One wake-up per INSERT statement, however many rows it adds.
CREATE FUNCTION shelfscan.jobs_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shelfscan_jobs', '{"type": "inserted"}');
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_notify_insert AFTER INSERT ON shelfscan.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION shelfscan.jobs_notify_insert();

-- A cancel request reaches the owning daemon at once; its heartbeat would learn it anyway.
CREATE FUNCTION shelfscan.jobs_notify_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shelfscan_jobs', json_build_object('type', 'cancel', 'id', NEW.id)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_notify_cancel AFTER UPDATE OF cancel_requested ON shelfscan.jobs
    FOR EACH ROW WHEN (NEW.cancel_requested AND NOT OLD.cancel_requested)
    EXECUTE FUNCTION shelfscan.jobs_notify_cancel();
