"""Maintainer tool: survey music21's corpus and print the built-in corpus table.

    python tools/survey_builtin_corpus.py > /tmp/table.py

Parses and performs every candidate score of the installed music21 corpus (minutes) and prints
the ``PIECES`` rows of ``src/pianogan/data/builtin_corpus.py`` (corpus path, composer, title,
kind, seconds of the default performance). The package only needs the table, not this survey.
"""

from __future__ import annotations

import re

from pianogan.data.builtin import CorpusPiece, load_score, perform, seed_for

COMPOSERS = {
    "bach": "Johann Sebastian Bach", "beach": "Amy Beach", "beethoven": "Ludwig van Beethoven",
    "chopin": "Frédéric Chopin", "cpebach": "Carl Philipp Emanuel Bach", "handel": "George Frideric Handel",
    "haydn": "Joseph Haydn", "joplin": "Scott Joplin", "mozart": "Wolfgang Amadeus Mozart",
    "schubert": "Franz Schubert", "schumann_clara": "Clara Schumann", "schumann_robert": "Robert Schumann",
    "schoenberg": "Arnold Schoenberg", "liliuokalani": "Liliʻuokalani", "johnson_j_r": "J. Rosamond Johnson",
    "weber": "Carl Maria von Weber", "webern": "Anton Webern", "corelli": "Arcangelo Corelli",
}
QUARTETS = ("beethoven/", "haydn/", "mozart/k80", "mozart/k155", "mozart/k156", "mozart/k458",
            "schumann_robert/opus41")
KEYBOARD = ("joplin/", "chopin/", "mozart/k545", "schumann_clara/polonaise", "schoenberg/", "cpebach/",
            "beach/")


def _kind(ref: str) -> str:
    if ref.startswith("bach/"):
        return "chorale"
    if ref.startswith(QUARTETS):
        return "quartet"
    if ref.startswith(KEYBOARD):
        return "keyboard"
    return "song"


TITLES = {"corelli/opus3no1/1grave": "Trio Sonata Op. 3 No. 1: Grave",
          "schumann_clara/opus17/movement3": "Piano Trio Op. 17: movement 3",
          "mozart/k545/movement1_exposition": "Piano Sonata K. 545: movement 1 (exposition)",
          "cpebach/h186": "Keyboard piece H. 186", "weber/concertino_clarinet": "Clarinet Concertino",
          "handel/rinaldo/Lascia_chio_pianga": "Rinaldo: Lascia ch'io pianga",
          "schumann_clara/polonaise_op1n1": "Polonaise Op. 1 No. 1",
          "schumann_clara/polonaise_op1n2": "Polonaise Op. 1 No. 2",
          "schumann_clara/polonaise_op1n3": "Polonaise Op. 1 No. 3",
          "schumann_clara/polonaise_op1n4": "Polonaise Op. 1 No. 4",
          "schoenberg/opus19/movement2": "Six Little Piano Pieces Op. 19: No. 2",
          "schoenberg/opus19/movement6": "Six Little Piano Pieces Op. 19: No. 6",
          "schumann_robert/dichterliebe_no2": "Dichterliebe Op. 48 No. 2",
          "schumann_robert/opus48no2": "Dichterliebe Op. 48 No. 2 (second encoding)",
          "webern/webern_dormi_jesu_op_16_no_2": "Dormi Jesu Op. 16 No. 2"}


def _title(ref: str, score) -> str:
    stem = ref.rsplit(".", 1)[0]
    if stem in TITLES:
        return TITLES[stem]
    if ref.startswith("bach/"):
        return "Chorale BWV " + stem.split("bwv", 1)[1]
    work = stem.split("/", 1)[1]
    pretty = re.sub(r"opus(\d+)no(\d+)", r"Op. \1 No. \2", work)
    pretty = re.sub(r"opus(\d+)", r"Op. \1", pretty)
    pretty = re.sub(r"^k(\d+)", r"K. \1", pretty)
    pretty = re.sub(r"/movement(\d+)", r": movement \1", pretty)
    if _kind(ref) == "quartet":
        return f"String Quartet {pretty}"
    md = score.metadata
    if md is not None and md.title and not md.title.lower().endswith((".xml", ".mxl", ".krn")):
        return md.title
    return pretty.replace("_", " ").title()


def survey() -> list[CorpusPiece]:
    """Parse and perform every candidate score of music21's corpus; returns the table."""
    from music21 import corpus

    paths = []
    for composer in COMPOSERS:
        for p in corpus.getComposer(composer):
            p = str(p)
            ref = p.split("/corpus/", 1)[1]
            if "choraleAnalyses" in ref or not ref.endswith((".mxl", ".xml", ".musicxml", ".krn")):
                continue
            paths.append(ref)
    by_stem: dict[str, str] = {}
    rank = {".mxl": 0, ".musicxml": 1, ".xml": 1, ".krn": 2}
    for ref in sorted(paths):
        stem, ext = ref.rsplit(".", 1)
        cur = by_stem.get(stem)
        if cur is None or rank["." + ext] < rank["." + cur.rsplit(".", 1)[1]]:
            by_stem[stem] = ref
    out = []
    for ref in sorted(by_stem.values()):
        try:
            score = load_score(ref)
            kind = _kind(ref)
            pm = perform(score, seed_for(ref), kind)
        except Exception as e:  # noqa: BLE001 - survey reports and moves on
            print(f"# skip {ref}: {e}")
            continue
        out.append(CorpusPiece(ref, COMPOSERS[ref.split("/")[0]], _title(ref, score), kind,
                               round(float(pm.get_end_time()), 1)))
    return out


if __name__ == "__main__":
    pieces = survey()
    print(f"# {len(pieces)} pieces, {sum(p.seconds for p in pieces) / 3600:.2f} h")
    print("PIECES = [")
    for p in pieces:
        print(f"    ({p.ref!r}, {p.composer!r}, {p.title!r}, {p.kind!r}, {p.seconds}),")
    print("]")
