#!/usr/bin/env python3
"""Writes the Webscale-RL CPU fixture (spec webscale.md §6) used by rlft-webscale's tests and
the `rlft webscale run` example: crates/webscale/fixtures/{docs.jsonl, bench.jsonl,
docs.parquet}.

All documents are our own invented encyclopedia-style paragraphs. The script checks that each
one gets the domain intended by the fixture script's keyword table (src/fixture.rs).

Run: python3 scripts/webscale_fixture.py   (needs pyarrow for the Parquet copy)
"""
import json
import os

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "webscale", "fixtures")

# keyword table of src/fixture.rs, first match wins
KEYWORDS = [("theorem", "Math"), ("compiler", "Coding"), ("engine", "Technology & Engineering"),
            ("parliament", "Social Science"), ("species", "Natural Science"),
            ("cuisine", "Travel & Lifestyle"), ("bank", "Commerce & Economics"),
            ("hospital", "Medicine & Health"), ("school", "Education"),
            ("telescope", "Natural Science")]

def domain_of(text):
    low = text.lower()
    for k, d in KEYWORDS:
        if k in low:
            return d
    return "Other"

TAIL = (" Historians still study its early records, and visitors can read about its founders in a"
        " small exhibition that is open on most days of the year.")

DOCS = [
 ("d01", "Math", "The Ravel Institute for Geometry was founded in 1884. Its members proved a well known theorem about the angles of polygons drawn inside circles, and they published their results in a journal that still appears four times a year. Students from many countries came to attend its lectures on number patterns and shapes." + TAIL),
 ("d02", "Math", "The Halden Number Circle was founded in 1931. This society of amateur mathematicians met every month to discuss a theorem chosen by one of its members, and over the decades it collected a large library of puzzles about primes, fractions and infinite sums that teachers still borrow for their lessons." + TAIL),
 ("d03", "Technology & Engineering", "The Corran Motor Works was founded in 1908. The company built a small steam engine for farm carts and later a petrol engine that powered delivery vans across the northern valleys, and its workshop trained hundreds of mechanics in the repair of gears, pumps and boilers." + TAIL),
 ("d04", "Technology & Engineering", "The Vell Turbine Company was founded in 1947. It designed a compact jet engine for regional aircraft and tested it in a wind tunnel near the coast, where long rows of fans could push air past the blades at nearly the speed of sound during the trials." + TAIL),
 ("d05", "Social Science", "The Assembly of the Lowland Towns was founded in 1791. It acted as a regional parliament in which each town sent two delegates, and its debates about taxes, roads and schooling of poor children were printed in pamphlets that travelled from market to market." .replace("schooling", "lessons") + TAIL),
 ("d06", "Social Science", "The Brenn Civic Forum was founded in 1968. Its members studied how a national parliament forms coalitions after close elections, and they interviewed hundreds of voters about trust, local identity and the role of newspapers in shaping opinions during long campaigns." + TAIL),
 ("d07", "Natural Science", "The Tarn Valley Field Station was founded in 1926. Its biologists described more than forty species of beetles that live under the bark of old pine trees, and they measured how the insects survive frost by filling their bodies with natural sugars during the coldest months." + TAIL),
 ("d08", "Natural Science", "The Coastal Seed Bank of Varda was founded in 1974. It stores seeds of rare plant species collected from cliffs and dunes, keeping them dry and frozen in steel drawers so that the plants could be grown again if their wild populations ever disappeared." .replace("Seed Bank", "Seed Vault") + TAIL),
 ("d09", "Travel & Lifestyle", "The Olmo Harbour Market was founded in 1899. Travellers visit it for the local cuisine, especially grilled sardines, flat bread baked in stone ovens and a sweet almond pastry, and the stalls stay open late into the warm summer evenings along the old quay." + TAIL),
 ("d10", "Travel & Lifestyle", "The Saffron Road Guild of Cooks was founded in 1952. Its cooks travelled through mountain villages to record recipes of the regional cuisine, from slow cooked lentil stews to honey cakes, and they published a guide that hikers still carry on long walking holidays." + TAIL),
 ("d11", "Commerce & Economics", "The Grainport Exchange Bank was founded in 1867. It lent money to farmers who shipped wheat down the river, and its clerks recorded every loan, interest rate and harvest price in heavy ledgers that economists now use to study the trade cycles of that century." + TAIL),
 ("d12", "Medicine & Health", "The Westmere Fever Hospital was founded in 1889. Its doctors treated patients during several outbreaks of typhoid, and they were among the first to insist on boiling drinking water and washing hands between patients, which reduced deaths in the wards by more than half." + TAIL),
 ("d13", "Education", "The Linden Night School was founded in 1903. It taught reading, arithmetic and bookkeeping to factory workers after their shifts, and many of its former pupils later became foremen, clerks or teachers themselves in the growing towns along the canal." + TAIL),
 ("d14", "Education", "The Harrow Lane School of Music was founded in 1938. Children learned to play the violin and the flute in small groups, and each spring the pupils gave a concert in the town hall for their families, playing pieces they had practised for the whole winter." + TAIL),
 ("d15", "Other", "The Quillby Kite Club was founded in 1976. Its members build kites from paper, bamboo and string, and every autumn they hold a festival on the hill above the village where hundreds of colourful kites fly together when the wind is steady enough." + TAIL),
 ("d16", "Other", "The Amberly Puzzle Society was founded in 1959. Its members design crosswords and riddles for the weekend newspapers, and once a year they gather in a large hall to solve a giant puzzle that takes the fastest teams more than five hours to finish." + TAIL),
 ("d17", "Other", "The Fennick Stamp Circle was founded in 1921. Collectors meet in the back room of a café to trade stamps from distant islands, and they keep a catalogue of printing errors, such as upside down ships and missing colours, that makes some stamps very valuable." + TAIL),
 # specials
 ("d18", "Medicine & Health", "The Orchid Children's Hospital was founded in 1923. Its nurses cared for young patients with lung infections, and the building had wide balconies where the children rested in fresh air, a treatment doctors believed would help them breathe and recover faster." + TAIL),
 ("d19", None, "The Starwell Almanac Press was founded in 1911. It printed a weekly horoscope for each sign of the zodiac next to tide tables and sunrise times, and farmers bought the almanac to plan their planting, although the predictions were written by the printer's nephew." + TAIL),
 ("d20", "Education", "The Brightwater Village School was founded in 1895. Its single classroom held pupils of every age around one iron stove, and the teacher used slates, chalk and a globe to explain reading, sums and the shapes of the continents to children from the surrounding farms." + TAIL),
 ("d21", "Other", "The lighthouse keeper counted forty ships passing the northern cape during the long winter storm of that year. The Cape Lighthouse was founded in 1871. Its lamp burned whale oil at first and later paraffin, and its keepers wrote the weather into a logbook every three hours." + TAIL),
 ("d22", "Natural Science", "The Kestrel Observatory was founded in 1902. Its large telescope stood on a hill far from city lights, and astronomers there measured the brightness of variable stars night after night, sending their tables by post to colleagues around the world." + TAIL),
 ("d23", "Commerce & Economics", "The Marlow Savings Bank was founded in 1856. It accepted small weekly deposits from servants, sailors and shop assistants, paid a modest interest every year, and its penny savings books helped many families buy their first house after decades of careful saving." + TAIL),
 ("d24", "Coding", "The Tessel Compiler Project was founded in 1998. Volunteers wrote a compiler that translates a small teaching language into fast machine code, and the project became popular in universities because its error messages explain mistakes in plain words." + TAIL),
]
NOTABLY = {"d01", "d03", "d05", "d07", "d09", "d15"}

GERMAN = ("Die Stadtbibliothek von Kernau wurde im Jahr 1890 gegründet. Sie besitzt heute mehr als "
          "zwanzigtausend Bücher, darunter alte Landkarten, Kochbücher und Briefe der Gründer. Jeden "
          "Samstag lesen freiwillige Helfer den Kindern Geschichten vor, und im Winter finden im großen "
          "Lesesaal Vorträge über die Geschichte der Region statt, zu denen viele Bürger kommen.")
LONG_PARA = ("The Northfield Library was founded in 1887. Its reading rooms hold newspapers, maps and "
             "letters from the families who settled the valley, and librarians help visitors trace the "
             "history of their farms and houses through old records and photographs.\n\n")
BOILER = ("Home | About | Contact | Sign in | Register | Your account | Help centre | Privacy policy | "
          "Terms of use | Cookie settings | Subscribe to our newsletter | Follow us | Careers | Press | "
          "Shop | Gift cards | Delivery information | Returns | Store finder | Site map | "
          "Copyright all rights reserved | Back to top | Home | About | Contact | Sign in | Register | "
          "Accessibility | Language | Search this site | Menu | Close menu")

BENCH = [
    {"bench": "fixture-qa", "id": "b1", "text": "The lighthouse keeper counted forty ships passing the northern cape during the long winter storm of that year."},
    {"bench": "fixture-qa", "id": "b2", "text": "What is the chemical symbol of the element with atomic number seventy nine? Answer: Au"},
    {"bench": "fixture-math", "id": "b3", "text": "A train leaves a station at nine and travels at sixty miles per hour for three hours; how far does it go?"},
]

def main():
    rows = []
    for did, dom, text in DOCS:
        if did in NOTABLY:
            text += " Notably, it is still remembered today."
        assert "Notably" not in text or did in NOTABLY
        if dom is not None:
            assert domain_of(text) == dom, (did, domain_of(text), dom)
        assert len(text.split()) >= 50, did
        rows.append({"id": did, "source": "fixture", "text": text})
    long_text = LONG_PARA * (200_000 // len(LONG_PARA) + 1)
    edges = [
        {"id": "e1", "source": "fixture", "text": ""},
        {"id": "e2", "source": "fixture", "text": "A short note about the weather in spring."},
        {"id": "e3", "source": "fixture", "text": GERMAN},
        {"id": "e4", "source": "fixture", "text": long_text},
        {"id": "e5", "source": "fixture", "text": rows[0]["text"]},
        {"id": "e6", "source": "fixture", "text": BOILER},
    ]
    assert len(GERMAN.split()) >= 50 and len(BOILER.split()) >= 50
    # interleave the edge cases with the documents
    out = []
    for i, r in enumerate(rows):
        out.append(r)
        if i % 4 == 1 and edges:
            out.append(edges.pop(0))
    out.extend(edges)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "docs.jsonl"), "w") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(os.path.join(OUT, "bench.jsonl"), "w") as f:
        for b in BENCH:
            f.write(json.dumps(b) + "\n")
    # Parquet copy of the 24 documents (FineWeb-like columns: text, id, plus a non-text column).
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({
        "text": [r["text"] for r in rows],
        "id": [r["id"] for r in rows],
        "token_count": [len(r["text"].split()) for r in rows],
    })
    pq.write_table(table, os.path.join(OUT, "docs.parquet"), compression="snappy")
    print(f"{len(out)} rows, {len(BENCH)} benchmark items, long doc {len(long_text)} chars")

if __name__ == "__main__":
    main()
