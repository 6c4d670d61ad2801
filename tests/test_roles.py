"""Word order that changes who does what (pmm_memo._roles, through the `roles` guard)."""

from __future__ import annotations

import pytest

from pmm_memo._guards import Guards, same_opposites, same_roles


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Are there flights from Paris to London?", "Are there flights from London to Paris?"),
        ("flights from Paris to London", "flights to Paris from London"),
        ("How do I convert miles to km?", "How do I convert km to miles?"),
        ("What is 5 miles in km?", "What is 5 km in miles?"),
        ("How do I convert a string to an int?", "How do I convert an int to a string?"),
        ("Is Java faster than Python?", "Is Python faster than Java?"),
        ("How is Ronaldo better than Messi?", "How is Messi better than Ronaldo?"),
        ("What happens if India attacks Pakistan?", "What happens if Pakistan attacks India?"),
        ("Do girls like introvert guys?", "Do guys like introvert girls?"),
        (
            "What secrets should a boy know about a girl?",
            "What secrets should a girl know about a boy?",
        ),
        ("Can a dog eat cat food?", "Can a cat eat dog food?"),
        ("How do I port an app from Java to .NET?", "How do I port an app from .NET to Java?"),
    ],
)
def test_roles_traded_are_vetoed(a: str, b: str) -> None:
    assert not same_roles(a, b)
    assert not same_roles(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Which is better, Dubai or Qatar?", "Which is better, Qatar or Dubai?"),  # coordinator
        ("What is the difference between cats and dogs?", "Difference between dogs and cats?"),
        ("React vs Angular: which one?", "Angular vs React: which one?"),
        ("Is C# better than Java?", "Is Java worse than C#?"),  # than + opposite: same
        ("Any advice for female solo travellers?", "Any tips for solo female travellers?"),
        (
            "What are the best learning sites for Python?",
            "What are good sites for learning Python?",
        ),
        ("How do I get from Paris to London?", "What is the way to London from Paris?"),
        ("Who had the worst death in Game of Thrones?", "Which Game of Thrones death was worst?"),
        ("How can I learn Python fast?", "How fast can I learn Python?"),
    ],
)
def test_the_same_roles_pass(a: str, b: str) -> None:
    assert Guards(("roles", "opposites")).veto(a, b) is None
    assert Guards(("roles", "opposites")).veto(b, a) is None


def test_than_cancels_only_with_a_flipped_opposite() -> None:
    assert same_roles("Is C# better than Java?", "Is Java worse than C#?")
    assert same_opposites("Is C# better than Java?", "Is Java worse than C#?")
    assert not same_opposites("Is C# better than Java?", "Is C# worse than Java?")
    assert not same_roles("Is C# better than Java?", "Is Java better than C#?")


def test_a_document_is_not_searched_for_transpositions() -> None:
    """Past 64 shared words the transposition rule is not applied (its cost would grow
    with the cube of the words); the changed-sentence check covers documents."""
    words = " ".join(f"w{i}" for i in range(80))
    assert same_roles(f"{words} India attacks Pakistan", f"{words} Pakistan attacks India")
    assert not same_roles("India attacks Pakistan today", "Pakistan attacks India today")
