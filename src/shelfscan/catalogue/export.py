"""`shelfscan export`: the catalogue as JSON Lines, one book per line.

The JSON is assembled by PostgreSQL in one streamed query, so exporting a
large library costs one round trip per few hundred books and little memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg

EXPORT_SQL = """
SELECT json_build_object(
  'id', b.id,
  'library', l.name,
  'title', b.title,
  'subtitle', b.subtitle,
  'sort_title', b.sort_title,
  'status', b.status,
  'authors', COALESCE((
      SELECT json_agg(json_build_object('name', p.name, 'sort_name', p.sort_name, 'role', ba.role)
                      ORDER BY ba.sort_order)
      FROM shelfscan.book_authors ba JOIN shelfscan.persons p ON p.id = ba.person_id
      WHERE ba.book_id = b.id), '[]'::json),
  'series', COALESCE((
      SELECT json_agg(json_build_object('name', s.name, 'number', bs.number) ORDER BY bs.sort_order)
      FROM shelfscan.book_series bs JOIN shelfscan.series s ON s.id = bs.series_id
      WHERE bs.book_id = b.id), '[]'::json),
  'genres', COALESCE((
      SELECT json_agg(g.name ORDER BY g.name)
      FROM shelfscan.book_genres bg JOIN shelfscan.genres g ON g.id = bg.genre_id
      WHERE bg.book_id = b.id), '[]'::json),
  'tags', COALESCE((
      SELECT json_agg(t.name ORDER BY t.name)
      FROM shelfscan.book_tags bt JOIN shelfscan.tags t ON t.id = bt.tag_id
      WHERE bt.book_id = b.id), '[]'::json),
  'description', b.description,
  'publisher', pub.name,
  'release_date', b.release_date,
  'language', b.language,
  'field_sources', b.field_sources,
  'cover', (
      SELECT json_build_object('mime', cv.mime, 'width', cv.width, 'height', cv.height, 'sha256', cv.sha256)
      FROM shelfscan.covers cv WHERE cv.id = b.cover_id),
  'files', COALESCE((
      SELECT json_agg(json_build_object(
          'path', f.path,
          'root', lp.path,
          'format', f.format,
          'size', f.size,
          'status', f.status,
          'error', f.scan_error,
          'language', f.language,
          'identifiers', COALESCE((
              SELECT json_object_agg(fi.type, fi.value)
              FROM shelfscan.file_identifiers fi WHERE fi.file_id = f.id), '{}'::json),
          'narrators', COALESCE((
              SELECT json_agg(p.name ORDER BY fn.sort_order)
              FROM shelfscan.file_narrators fn JOIN shelfscan.persons p ON p.id = fn.person_id
              WHERE fn.file_id = f.id), '[]'::json),
          'duration_s', f.duration_s,
          'page_count', f.page_count,
          'chapters', COALESCE((
              SELECT json_agg(json_strip_nulls(json_build_object(
                  'title', c.title, 'level', c.level, 'start_s', c.start_s, 'href', c.href))
                  ORDER BY c.sort_order)
              FROM shelfscan.chapters c WHERE c.file_id = f.id), '[]'::json),
          'cover', (
              SELECT json_build_object('mime', cv.mime, 'width', cv.width, 'height', cv.height,
                                       'sha256', cv.sha256)
              FROM shelfscan.covers cv WHERE cv.id = f.cover_id),
          -- audio technical
          'audio', (
              SELECT json_build_object('album', fa.album, 'track_number', fa.track_number,
                  'track_total', fa.track_total, 'disc_number', fa.disc_number,
                  'disc_total', fa.disc_total, 'composer', fa.composer, 'codec', fa.codec,
                  'bitrate', fa.bitrate, 'sample_rate', fa.sample_rate, 'channels', fa.channels)
              FROM shelfscan.file_audio fa WHERE fa.file_id = f.id),
          -- books (issue 10)
          'warning', f.warning
        ) ORDER BY f.sort_order, f.path)
      FROM shelfscan.files f JOIN shelfscan.library_paths lp ON lp.id = f.root_id
      WHERE f.book_id = b.id), '[]'::json),
  -- comics (issue 10)
  'age_rating', b.age_rating,
  'reading_direction', b.reading_direction,
  'web_link', b.web_link,
  'volume', b.volume,
  'volume_count', b.volume_count,
  'issue_count', b.issue_count,
  'story_arcs', COALESCE((
      SELECT json_agg(json_build_object('name', s.name, 'number', bs.number) ORDER BY bs.sort_order)
      FROM shelfscan.book_subjects bs JOIN shelfscan.subjects s ON s.id = bs.subject_id
      WHERE bs.book_id = b.id AND s.kind = 'story_arc'), '[]'::json),
  'characters', COALESCE((
      SELECT json_agg(s.name ORDER BY bs.sort_order)
      FROM shelfscan.book_subjects bs JOIN shelfscan.subjects s ON s.id = bs.subject_id
      WHERE bs.book_id = b.id AND s.kind = 'character'), '[]'::json),
  'teams', COALESCE((
      SELECT json_agg(s.name ORDER BY bs.sort_order)
      FROM shelfscan.book_subjects bs JOIN shelfscan.subjects s ON s.id = bs.subject_id
      WHERE bs.book_id = b.id AND s.kind = 'team'), '[]'::json),
  'locations', COALESCE((
      SELECT json_agg(s.name ORDER BY bs.sort_order)
      FROM shelfscan.book_subjects bs JOIN shelfscan.subjects s ON s.id = bs.subject_id
      WHERE bs.book_id = b.id AND s.kind = 'location'), '[]'::json)
)::text AS doc
FROM shelfscan.books b
JOIN shelfscan.libraries l ON l.id = b.library_id
LEFT JOIN shelfscan.publishers pub ON pub.id = b.publisher_id
WHERE ($1::text IS NULL OR l.name = $1)
ORDER BY l.name, b.sort_title, b.id
"""


async def export_books(pool: asyncpg.Pool, library: str | None = None) -> AsyncIterator[str]:
    """Yield one JSON document per book."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for row in conn.cursor(EXPORT_SQL, library, prefetch=200):
            yield row["doc"]
