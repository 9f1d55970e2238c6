-- The change feed for book servers: which books a scan added, updated, marked missing or
-- restored, one row per book per committed step, in commit order.
--
-- `seq` is taken under a transaction-level advisory lock by the one writer
-- (shelfscan.jobs.changes.record_changes), so rows become visible in `seq` order: a reader
-- that has seen seq N never later finds a committed row below N (without the lock, two
-- concurrent inserters could commit their sequence values out of order). Rows go with
-- their job (ON DELETE CASCADE), so job retention prunes the feed too.

CREATE TABLE shelfscan.catalogue_changes (
    seq        bigserial PRIMARY KEY,
    library_id bigint NOT NULL REFERENCES shelfscan.libraries (id) ON DELETE CASCADE,
    book_id    bigint NOT NULL,  -- no foreign key: a change outlives a purged book
    change     text NOT NULL CHECK (change IN ('added', 'updated', 'missing', 'restored')),
    job_id     bigint NOT NULL REFERENCES shelfscan.jobs (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now()
);

-- "everything after my last seq for this library"
CREATE INDEX catalogue_changes_library_seq_idx ON shelfscan.catalogue_changes (library_id, seq);
-- pruning with the jobs (the cascade looks rows up by job)
CREATE INDEX catalogue_changes_job_idx ON shelfscan.catalogue_changes (job_id);
