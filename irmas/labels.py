"""The 11 IRMAS instrument classes: the one place their order and names are defined.

The order is the model's output order, so it must never change for a published model.
"""

CODES: tuple[str, ...] = ("cel", "cla", "flu", "gac", "gel", "org", "pia", "sax", "tru", "vio", "voi")

NAMES: dict[str, str] = {
    "cel": "cello",
    "cla": "clarinet",
    "flu": "flute",
    "gac": "acoustic guitar",
    "gel": "electric guitar",
    "org": "organ",
    "pia": "piano",
    "sax": "saxophone",
    "tru": "trumpet",
    "vio": "violin",
    "voi": "voice",
}

INDEX: dict[str, int] = {code: i for i, code in enumerate(CODES)}


def name(code: str) -> str:
    """Human name of an IRMAS code ("gel" -> "electric guitar")."""
    return NAMES[code]
