-- Cover bytes live in append-only pack files under <covers dir>/packs/: creating one file
-- per cover cost more CPU than parsing the book. A cover is read back with
-- pread(pack, pack_offset, size), or `shelfscan cover <sha256>`.

ALTER TABLE shelfscan.covers
    ADD COLUMN pack text,
    ADD COLUMN pack_offset bigint;
