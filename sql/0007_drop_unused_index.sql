-- Moves are matched in memory against the catalogue loaded for the diff; no query uses this
-- index, and every first scan paid for maintaining it.
DROP INDEX shelfscan.files_fingerprint_idx;
