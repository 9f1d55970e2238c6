-- Packs that a covers compaction has emptied. Their files are deleted only after a grace
-- period, so a reader that looked a cover up just before the swap can still open the old
-- pack; `shelfscan covers compact` (and the daemon's schedule) deletes them later.

CREATE TABLE shelfscan.cover_packs_retired (
    pack        text PRIMARY KEY,
    retired_at  timestamptz NOT NULL DEFAULT now()
);
