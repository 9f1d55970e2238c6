-- Moves and renames keep a file's row (and its book and edits): a new path is matched
-- to a vanished file by (device, inode) or by a content fingerprint.
-- Names that are not valid UTF-8 keep their exact bytes in path_raw; `path` then holds
-- a readable form with the bad bytes written as \xNN.

ALTER TABLE shelfscan.files
    ADD COLUMN device bigint,
    ADD COLUMN fingerprint text,
    ADD COLUMN path_raw bytea;

CREATE INDEX files_fingerprint_idx ON shelfscan.files (library_id, size, fingerprint)
    WHERE fingerprint IS NOT NULL;

ALTER TABLE shelfscan.sidecars ADD COLUMN path_raw bytea;
