-- One rule, one place: at most one queued scan_library and one running scan per library.
--
-- Before this migration a trigger deduplicated INSERTs only; a running scan going back to
-- the queue (lease expired, retry with attempts left, shutdown release, `jobs retry`) while a
-- follow-up was queued hit the unique index and the whole statement failed -- one such row
-- blocked the reaper for every library. Now every row that becomes a queued scan_library, by
-- INSERT or by UPDATE, passes through `jobs_one_scan`:
--   * an INSERT while one is queued is the same request and is dropped (INSERT 0 0, as before);
--   * an UPDATE that puts a job back in the queue absorbs the queued follow-up in the same
--     statement: the follow-up ends `cancelled` with `merged_into` naming the job that does its
--     work (that job runs after the follow-up was asked for, so the request is honoured).

-- The job that does a merged request's work.
ALTER TABLE shelfscan.jobs ADD COLUMN merged_into bigint REFERENCES shelfscan.jobs (id) ON DELETE SET NULL;

-- "One running scan per library" covers targeted (watch) scans too; split parts
-- (parent_id set) are meant to run side by side and are exempt.
DROP INDEX shelfscan.jobs_one_running_scan;
-- A targeted scan that an older daemon ran beside a full scan of the same library (a claim
-- race the old index did not cover) goes back to the queue, so the index can be built.
UPDATE shelfscan.jobs SET state = 'queued', owner = NULL, lease_expires_at = NULL,
    attempts = greatest(attempts - 1, 0), run_at = now()
WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY library_id
                                      ORDER BY (kind = 'scan_library') DESC, id) AS n
        FROM shelfscan.jobs
        WHERE state = 'running' AND parent_id IS NULL AND library_id IS NOT NULL
          AND kind IN ('scan_library', 'scan_path')) r
    WHERE n > 1);
CREATE UNIQUE INDEX jobs_one_running_scan ON shelfscan.jobs (library_id)
    WHERE state = 'running' AND parent_id IS NULL AND kind IN ('scan_library', 'scan_path');

DROP TRIGGER jobs_dedupe ON shelfscan.jobs;
DROP FUNCTION shelfscan.jobs_dedupe();

CREATE FUNCTION shelfscan.jobs_one_scan() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lib   bigint;
    other shelfscan.jobs%ROWTYPE;
BEGIN
    IF NEW.kind <> 'scan_library' OR NEW.state <> 'queued' OR NOT (NEW.payload ? 'library_id')
       OR (TG_OP = 'UPDATE' AND OLD.state = 'queued') THEN
        RETURN NEW;
    END IF;
    -- NEW.library_id is a generated column, not yet computed in a BEFORE trigger.
    lib := (NEW.payload ->> 'library_id')::bigint;
    -- Serialises everyone who makes a queued scan of this library, so that each sees the
    -- others' committed rows (a volatile function's statements take fresh snapshots).
    PERFORM pg_advisory_xact_lock(1399676259, hashtext(lib::text));
    SELECT * INTO other FROM shelfscan.jobs
    WHERE kind = 'scan_library' AND state = 'queued' AND library_id = lib AND id <> NEW.id
    LIMIT 1;
    IF other.id IS NULL THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        RETURN NULL;
    END IF;
    -- A claim that took the follow-up meanwhile wins: it is running, not queued, and the
    -- WHERE re-check leaves it alone.
    UPDATE shelfscan.jobs
    SET state = 'cancelled', merged_into = NEW.id, finished_at = now(), lease_expires_at = NULL,
        last_error = 'merged into job ' || NEW.id || ', which scans the library again'
    WHERE id = other.id AND state = 'queued';
    NEW.priority := greatest(NEW.priority, other.priority);
    RETURN NEW;
END $$;

CREATE TRIGGER jobs_one_scan BEFORE INSERT OR UPDATE OF state ON shelfscan.jobs
    FOR EACH ROW EXECUTE FUNCTION shelfscan.jobs_one_scan();

-- Scans that an earlier CLI recorded as running without a lease were never reaped and
-- blocked their library for good: give them an expired lease, so the reaper (or the next
-- CLI scan of that library) ends them like any other job whose owner went silent.
UPDATE shelfscan.jobs SET lease_expires_at = now() WHERE state = 'running' AND lease_expires_at IS NULL;
