-- Audio technical facts, one row per audio file (a book's parts differ): what a book
-- server orders parts by (disc, then track) and decides on transcoding by (codec,
-- bitrate, sample rate, channels). Duration stays in files.duration_s.
-- Rows are rewritten from the file on every scan that reads it, like files.duration_s:
-- they describe the file, not the book, so they have no field source and no manual lock.

CREATE TABLE shelfscan.file_audio (
    file_id       bigint PRIMARY KEY REFERENCES shelfscan.files (id) ON DELETE CASCADE,
    album         text,
    track_number  integer CHECK (track_number > 0),
    track_total   integer CHECK (track_total > 0),
    disc_number   integer CHECK (disc_number > 0),
    disc_total    integer CHECK (disc_total > 0),
    composer      text,
    codec         text,      -- aac, alac, mp3, flac, opus, vorbis ...
    bitrate       integer CHECK (bitrate > 0),      -- bits per second
    sample_rate   integer CHECK (sample_rate > 0),  -- Hz
    channels      integer CHECK (channels > 0)
);

COMMENT ON TABLE shelfscan.file_audio IS
    'Per audio file: album, track/disc number and total, composer and stream facts. '
    'Order a book''s parts with ORDER BY disc_number NULLS FIRST, track_number NULLS FIRST.';
