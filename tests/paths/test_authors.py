"""Author lists in folder names -> the people, in reading order.

Conventions: Audiobookshelf's parseNameString tests (`A & B`, `A and B`, `A; B`, `A, B and C`,
`Smith, John, Doe, Jane`, `John Smith, Jones, James Doe, Ludwig von Mises`, `von Mises,
Ludwig`, `张三, 李四`, duplicates and empty pieces dropped) and calibre's author splitting
(`&`, ` and `). One deliberate difference: Audiobookshelf turns "Smith, John Jr." into
"John Jr. Smith"; we give "John Smith Jr.", how the name is written in reading order.
"""

from __future__ import annotations

import pytest

from shelfscan.names import person_display
from shelfscan.paths import split_authors

AUTHORS = [
    ("John Smith", ("John Smith",)),
    ("Smith, John", ("John Smith",)),
    ("John Smith & Jane Doe", ("John Smith", "Jane Doe")),
    ("John Smith and Jane Doe", ("John Smith", "Jane Doe")),
    ("John Smith, Jane Doe and John Doe", ("John Smith", "Jane Doe", "John Doe")),
    ("John Smith; Jane Doe", ("John Smith", "Jane Doe")),
    ("Smith, John, Doe, Jane", ("John Smith", "Jane Doe")),
    ("John Smith, Jones, James Doe, Ludwig von Mises",
     ("John Smith", "Jones", "James Doe", "Ludwig von Mises")),
    ("Jones; John Smith; James Doe; Ludwig von Mises",
     ("Jones", "John Smith", "James Doe", "Ludwig von Mises")),
    ("Smith, John Jr.", ("John Smith Jr.",)),
    ("von Mises, Ludwig", ("Ludwig von Mises",)),
    ("张三, 李四", ("张三", "李四")),
    ("张三、李四", ("张三", "李四")),
    ("村上 春樹", ("村上 春樹",)),
    ("John Smith & John Smith", ("John Smith",)),
    ("John Smith,", ("John Smith",)),
    ("Kishimi, Ichiro, Koga, Fumitake", ("Ichiro Kishimi", "Fumitake Koga")),
    ("Kishimi, Ichiro & Koga, Fumitake", ("Ichiro Kishimi", "Fumitake Koga")),
    ("Kishimi, Ichiro; Koga, Fumitake", ("Ichiro Kishimi", "Fumitake Koga")),
    ("Tolkien, J.R.R.", ("J.R.R. Tolkien",)),
    ("Tolkien, J.R.R., Lewis, C.S.", ("J.R.R. Tolkien", "C.S. Lewis")),
    ("Le Guin, Ursula K.", ("Ursula K. Le Guin",)),
    ("Le Guin, Ursula K., King, Stephen", ("Ursula K. Le Guin", "Stephen King")),
    ("King, Martin Luther, Jr.", ("Martin Luther King Jr.",)),
    ("Martin Luther King, Jr.", ("Martin Luther King Jr.",)),
    ("Stephen King & Peter Straub", ("Stephen King", "Peter Straub")),
    ("Stephen King and Peter Straub", ("Stephen King", "Peter Straub")),
    ("Terry Pratchett, Neil Gaiman", ("Terry Pratchett", "Neil Gaiman")),
    ("Terry Pratchett & Neil Gaiman", ("Terry Pratchett", "Neil Gaiman")),
    ("Douglas Preston; Lincoln Child", ("Douglas Preston", "Lincoln Child")),
    ("Preston, Douglas & Child, Lincoln", ("Douglas Preston", "Lincoln Child")),
    ("Preston, Douglas, Child, Lincoln", ("Douglas Preston", "Lincoln Child")),
    ("A. B. Author & C. D. Writer", ("A. B. Author", "C. D. Writer")),
    ("Homer", ("Homer",)),
    ("Plato; Aristotle", ("Plato", "Aristotle")),
    ("Plato, Aristotle, Homer", ("Plato", "Aristotle", "Homer")),
    ("Ludwig von Mises & Friedrich Hayek", ("Ludwig von Mises", "Friedrich Hayek")),
    ("de la Cruz, Juana Inés", ("Juana Inés de la Cruz",)),
    ("van Gogh, Vincent", ("Vincent van Gogh",)),
    ("Dostoevsky, Fyodor & Tolstoy, Leo", ("Fyodor Dostoevsky", "Leo Tolstoy")),
    ("Friedman, Milton & Friedman, Rose", ("Milton Friedman", "Rose Friedman")),
    ("Friedman, Milton, Friedman, Rose", ("Milton Friedman", "Rose Friedman")),
    ("Milton Friedman, Rose Friedman", ("Milton Friedman", "Rose Friedman")),
    ("鈴木 一郎, 田中 花子", ("鈴木 一郎", "田中 花子")),
    ("김철수, 이영희", ("김철수", "이영희")),
    ("Brandon Sanderson + Robert Jordan", ("Brandon Sanderson", "Robert Jordan")),
    ("Jane Austen ; Seth Grahame-Smith", ("Jane Austen", "Seth Grahame-Smith")),
    ("Grahame-Smith, Seth", ("Seth Grahame-Smith",)),
    ("García Márquez, Gabriel", ("Gabriel García Márquez",)),  # a two-word surname
    ("J. K. Rowling", ("J. K. Rowling",)),
    ("Rowling, J. K.", ("J. K. Rowling",)),
    ("Neil Gaiman and Terry Pratchett and Someone Else",
     ("Neil Gaiman", "Terry Pratchett", "Someone Else")),
    ("  John   Smith  ", ("John Smith",)),
    ("Goscinny und Uderzo", ("Goscinny", "Uderzo")),
    ("", ()),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), AUTHORS)
def test_author_lists(text: str, expected: tuple[str, ...]) -> None:
    assert tuple(person_display(p) for p in split_authors(text)) == expected


def test_people_are_returned_as_written() -> None:
    """The written "Last, First" survives, so the folder's spelling can be the sort name."""
    assert split_authors("Kishimi, Ichiro, Koga, Fumitake") == ("Kishimi, Ichiro", "Koga, Fumitake")
