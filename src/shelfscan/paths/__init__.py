"""Path inference: what file and folder names say about a book, as pure functions.

One module per concern, each pure (no I/O, no state; compiled patterns only):

* `tokens`: `split_name(filename) -> (stem, ext)`, `spaced(text, dots=False)`,
  `strip_groups(text) -> (text, groups)`, `is_noise(word)`, `is_disc_folder(name)`,
  `trim_separators(text)`,
  `COMIC_EXTS`, `TRACK_EXTS`.
* `numbers`: `NumberRange(start, end)` (str: "1", "1-3", "12.5"), `Marker(number, start,
  end)`, `find_volume(text)`, `find_chapter(text)`, `find_episode(text)`,
  `find_special(text)`, `group_year(group)`, `trailing_number(segment)`,
  `parse_decimal(text)`.
* `series`: `clean_series(text)`, `series_and_year(text) -> (series, year)`,
  `series_entry("Name, Book 3") -> ("Name", 3)`, `SERIES_MARKED_RE`.
* `comics`: `ComicName(series, volume, number, year, special, title)`,
  `parse_comic_name(name, series_known=False)`, `parse_comic_path(parts)` (folders then
  the file name, library containers already dropped).
* `audiobooks`: `TitleFolder(raw, title, sequence, year, narrators, asin, authors,
  series)`, `parse_title_folder(text, in_series=False)`, `split_subtitle(title)`.
* `authors`: `split_authors(text) -> tuple[str, ...]` (each person as written).

Sort names live in `shelfscan.names.person_sort_name`. `shelfscan.scan.pathhints` turns all
this into the `Metadata` the scan merges when tags are empty.
"""

from shelfscan.paths.audiobooks import TitleFolder, parse_title_folder, split_subtitle
from shelfscan.paths.authors import split_authors
from shelfscan.paths.comics import ComicName, parse_comic_name, parse_comic_path
from shelfscan.paths.numbers import (
    Marker,
    NumberRange,
    find_chapter,
    find_episode,
    find_special,
    find_volume,
    group_year,
    parse_decimal,
    trailing_number,
)
from shelfscan.paths.series import SERIES_MARKED_RE, clean_series, series_and_year, series_entry
from shelfscan.paths.tokens import (
    COMIC_EXTS,
    TRACK_EXTS,
    is_disc_folder,
    is_noise,
    spaced,
    split_name,
    strip_groups,
    trim_separators,
)

__all__ = [
    "COMIC_EXTS",
    "SERIES_MARKED_RE",
    "TRACK_EXTS",
    "ComicName",
    "Marker",
    "NumberRange",
    "TitleFolder",
    "clean_series",
    "find_chapter",
    "find_episode",
    "find_special",
    "find_volume",
    "group_year",
    "is_disc_folder",
    "is_noise",
    "parse_comic_name",
    "parse_comic_path",
    "parse_decimal",
    "parse_title_folder",
    "series_and_year",
    "series_entry",
    "spaced",
    "split_authors",
    "split_name",
    "split_subtitle",
    "strip_groups",
    "trailing_number",
    "trim_separators",
]
