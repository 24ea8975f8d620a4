"""A draft codebook guessed from a survey file.

:func:`draft_codebook` reads a survey file and writes a codebook in the
format of ``docs/codebook.md`` with one ``[[column]]`` table per column of
the file: its role and type guessed from the header and the answers, the
number of answers beside every level, category and option, and comments
where a guess needs a person to check it.  The draft loads as it is; it is
meant to be read and corrected, not trusted.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .codebook import DEFAULT_MISSING_CODES, as_number, normalise_answer
from .readers import read_survey

__all__ = ["draft_codebook"]

# Known answer scales, lowest first: (name, levels, values or None for 1..n).
_SCALES = [
    ("frequency", ("never", "rarely", "sometimes", "often", "very often"), None),
    ("frequency", ("never", "rarely", "sometimes", "often", "always"), None),
    ("frequency", ("never", "almost never", "sometimes", "fairly often", "very often"), None),
    ("frequency", ("never", "sometimes", "often", "always"), None),
    ("agreement", ("strongly disagree", "disagree", "neither agree nor disagree", "agree",
                   "strongly agree"), None),
    ("agreement", ("strongly disagree", "disagree", "neutral", "agree", "strongly agree"), None),
    ("agreement", ("strongly disagree", "disagree", "somewhat disagree", "neither agree nor disagree",
                   "somewhat agree", "agree", "strongly agree"), None),
    ("agreement", ("strongly disagree", "disagree", "agree", "strongly agree"), None),
    ("GAD-7/PHQ-9", ("not at all", "several days", "more than half the days", "nearly every day"),
     (0, 1, 2, 3)),
    ("satisfaction", ("very dissatisfied", "dissatisfied", "neither satisfied nor dissatisfied",
                      "satisfied", "very satisfied"), None),
    ("quality", ("poor", "fair", "good", "very good", "excellent"), None),
    ("level", ("low", "medium", "high"), None),
    ("level", ("very low", "low", "medium", "high", "very high"), None),
]

# Answers that usually mean "no answer" (compared after _key); "na" may be real.
_MISSING_KEYS = {"dontknow", "donotknow", "prefernottosay", "prefernottoanswer", "notapplicable",
                 "na", "refused", "noanswer", "declined", "declinedtoanswer"}
_MAYBE_REAL = {"na"}

_ID_TOKENS = {"id", "respondent", "respondentid", "responseid", "participant", "participantid",
              "pid", "uuid", "caseid", "recordid", "subject", "subjectid"}
_IDENTIFIER_TOKENS = {"name", "firstname", "lastname", "surname", "fullname", "username", "email",
                      "mail", "phone", "telephone", "mobile", "address", "ip", "ipaddress",
                      "timestamp", "date", "startdate", "enddate", "recordeddate", "latitude",
                      "longitude", "postcode", "zip", "signature"}
_OUTCOME_STEMS = ("depress", "anxi", "worr", "sleep", "stress", "wellbeing", "well-being", "lonel",
                  "mood", "phq", "gad", "score", "outcome", "burnout", "suicid")
_COVARIATE_STEMS = ("age", "gender", "sex", "income", "education", "occupation", "employ",
                    "relationship", "marital", "country", "ethnic", "race", "religio")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_IPV6 = re.compile(r"^[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}$")
_DATE = re.compile(r"^\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([AaPp][Mm])?"
                   r"(Z|[+-]\d{2}:?\d{2})?)?$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,}$")
_NUMBER_WORDS = {"a": "1", "an": "1", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ORDER_WORDS = re.compile(r"\b(very|extremely|slightly|somewhat|moderately|not|never|always|rarely|"
                          r"often|agree|disagree|satisf\w*|dissatisf\w*|likely|unlikely|important|"
                          r"low|high|less|more|poor|good|excellent|mild|moderate|severe)\b")
_MAX_CATEGORIES = 15


def _key(text: str) -> str:
    """Fold case, spacing and punctuation: ``"Non-binary "`` and ``"non binary"`` meet."""
    return re.sub(r"[\W_]+", "", str(text).casefold())


def _tokens(header: str) -> list[str]:
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", str(header))
    words = [w.lower() for w in words]
    return words + [a + b for a, b in zip(words, words[1:])]


def _q(text) -> str:
    """A TOML basic string (JSON escapes are valid TOML escapes)."""
    return json.dumps(str(text), ensure_ascii=False).replace("\x7f", "\\u007f")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass
class _Column:
    column: str
    name: str
    role: str = "ignore"
    type: str = "text"
    lines: list = field(default_factory=list)  # TOML lines after role/type
    notes: list = field(default_factory=list)  # comments above the table
    tail: list = field(default_factory=list)  # a sub-table, written last
    answers: set = field(default_factory=set)  # normalised valid answers
    extra_missing: list = field(default_factory=list)  # missing codes of this column only
    check: bool = False


# --------------------------------------------------------------------------
# reading the answers


def _variants(values: pd.Series) -> Counter:
    """Stripped answer text -> count, blanks left out."""
    text = values.dropna().map(lambda v: " ".join(str(v).split()))
    return Counter(t for t in text if t)


def _split_missing(counts: Counter) -> tuple[Counter, Counter]:
    """(answers, missing codes) of a column."""
    answers, missing = Counter(), Counter()
    for text, n in counts.items():
        (missing if _key(text) in _MISSING_KEYS else answers)[text] = n
    return answers, missing


def _groups(counts: Counter) -> list[tuple[str, Counter]]:
    """Answers folded over case, spacing and punctuation, then abbreviations
    (``"M"`` -> ``"Male"``, ``"NB"`` -> ``"Non-binary"``): (canonical, variants), most common first."""
    by_key: dict[str, Counter] = {}
    for text, n in counts.items():
        by_key.setdefault(_key(text) or text, Counter())[text] = n
    groups = {k: v for k, v in by_key.items()}
    for k in sorted(groups, key=lambda k: sum(groups[k].values())):
        if len(k) > 3 or k not in groups:
            continue
        targets = [other for other in groups if other != k and len(other) > len(k)
                   and sum(groups[other].values()) >= sum(groups[k].values())
                   and (other.startswith(k) if len(k) == 1 else k in _initials(groups[other]))]
        if len(targets) == 1:
            groups[targets[0]].update(groups.pop(k))
    out = [(variants.most_common(1)[0][0], variants) for variants in groups.values()]
    return sorted(out, key=lambda g: -sum(g[1].values()))


def _initials(variants: Counter) -> set:
    return {"".join(w[0] for w in re.split(r"[\W_]+", text.casefold()) if w) for text in variants}


def _share(counts: Counter, pattern) -> float:
    total = sum(counts.values())
    hit = sum(n for t, n in counts.items() if pattern(t))
    return hit / total if total else 0.0


def _is_phone(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    return bool(_PHONE.match(text)) and digits >= 7 and (
        text.startswith(("+", "0")) or any(c in text for c in " ()-."))


def _midpoint(label: str) -> float | None:
    """The number a range answer stands for: ``"Between 1 and 2 hours"`` -> 1.5."""
    t = " ".join(_NUMBER_WORDS.get(w, w) for w in label.casefold().replace("–", "-").split())
    nums = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", t)]
    if len(nums) == 1 and re.match(r"^(less than|fewer than|under|below|up to)\b", t):
        return nums[0] / 2
    if len(nums) == 1 and (re.match(r"^(more than|over|above|at least)\b", t) or "+" in t or "or more" in t):
        return nums[0] + 0.5
    if len(nums) == 2 and re.search(r"between|-|\bto\b|\band\b", t):
        return (nums[0] + nums[1]) / 2
    return None


# --------------------------------------------------------------------------
# guessing one column


def _role_of(header: str, default: str) -> str:
    text = str(header).casefold()
    if any(stem in text for stem in _OUTCOME_STEMS):
        return "outcome"
    if any(re.search(rf"\b{stem}", text) for stem in _COVARIATE_STEMS):
        return "covariate"
    return default


def _identifier_reason(header: str, counts: Counter, n_answers: int) -> str | None:
    if not counts:
        return None
    for what, test in (("e-mail addresses", lambda t: bool(_EMAIL.match(t))),
                       ("IP addresses", lambda t: bool(_IPV4.match(t) or _IPV6.match(t))),
                       ("dates or timestamps", lambda t: bool(_DATE.match(t))),
                       ("phone numbers", _is_phone)):
        if _share(counts, test) >= 0.8:
            return what
    many = len(counts) > 0.3 * n_answers or len(counts) > 20
    if many and set(_tokens(header)) & _IDENTIFIER_TOKENS:
        return "a header that names a direct identifier"
    numeric = _share(counts, lambda t: as_number(t) is not None) >= 0.9
    if not numeric and len(counts) > 0.5 * n_answers and len(counts) > _MAX_CATEGORIES:
        mean_length = sum(len(t) * n for t, n in counts.items()) / n_answers
        return "long free text" if mean_length > 30 else "mostly unique text (names?)"
    return None


def _likert(col: _Column, answers: Counter, labels: dict | None) -> bool:
    keys = {normalise_answer(t): t for t in answers}
    numbers = {as_number(t) for t in answers}
    best = None
    for scale_name, levels, values in _SCALES:
        numeric_codes = values is not None and all(
            k in levels or as_number(k) in values for k in keys) and not set(keys) <= set(levels)
        if set(keys) <= set(levels) or numeric_codes:
            overlap = len(set(keys) & set(levels))
            if overlap >= 2 and (best is None or (overlap, -len(levels)) > (best[0], -len(best[2]))):
                best = (overlap, scale_name, levels, values, numeric_codes)
    if best is not None:
        _, scale_name, levels, values, numeric_codes = best
        counts = Counter()
        for t, n in answers.items():
            k = normalise_answer(t)
            counts[k if k in levels else levels[values.index(int(as_number(t)))]] += n
        shown = {normalise_answer(t): t for t, _ in answers.most_common()[::-1]}
        col.type = "likert"
        col.notes.append(f"a {scale_name} scale")
        _levels(col, [shown.get(lv, lv[:1].upper() + lv[1:]) for lv in levels], counts, levels)
        if values is not None:
            col.lines.append(f"values = [{', '.join(str(v) for v in values)}]")
        if numeric_codes:
            col.lines.append("numeric_codes = true")
            col.notes.append(f"answered with labels and with the numbers {_num(min(values))}-"
                             f"{_num(max(values))}")
        return True
    if None not in numbers and all(float(v).is_integer() for v in numbers):
        lo, hi = int(min(numbers)), int(max(numbers))
        if lo in (0, 1) and 3 <= hi - lo + 1 <= 11 and len(numbers) >= 3:
            counts = Counter()
            for t, n in answers.items():
                counts[str(int(as_number(t)))] += n
            levels = [str(v) for v in range(lo, hi + 1)]
            col.type = "likert"
            col.notes.append(f"numbers {lo}-{hi}, read as a scale")
            _levels(col, levels, counts, levels)
            if lo == 0:
                col.lines.append(f"values = [{', '.join(levels)}]")
            return True
    if labels and set(keys) <= {normalise_answer(v) for v in labels.values()} \
            and _ORDER_WORDS.search(" ".join(keys)):
        ordered = sorted(labels.items())
        counts = Counter({normalise_answer(t): n for t, n in answers.items()})
        texts = [str(text) for _, text in ordered if _key(text) not in _MISSING_KEYS]
        col.type = "likert"
        col.notes.append("order and numbers from the file's value labels")
        _levels(col, texts, counts, [normalise_answer(t) for t in texts])
        col.lines.append("values = [" + ", ".join(_num(code) for code, text in ordered
                                                   if _key(text) not in _MISSING_KEYS) + "]")
        return True
    return False


def _levels(col: _Column, shown: list, counts: Counter, keys: list, key: str = "levels") -> None:
    col.lines.append(f"{key} = [")
    col.lines += [f"  {_q(text)},  # {counts.get(k, 0)}" for text, k in zip(shown, keys)]
    col.lines.append("]")
    col.answers |= {normalise_answer(t) for t in shown}


def _ordinal(col: _Column, answers: Counter) -> bool:
    if len(answers) < 3 or any(as_number(t) is not None for t in answers):
        return False
    points = {t: _midpoint(t) for t in answers}
    if None in points.values() or len(set(points.values())) < len(points):
        return False
    col.type = "ordinal"
    col.notes.append("ranges; each number is the middle of its range: check them")
    col.tail = ["[column.map]  # lowest first"]
    col.tail += [f"{_q(t)} = {_num(v)}  # {answers[t]}" for t, v in sorted(points.items(), key=lambda p: p[1])]
    col.answers |= {normalise_answer(t) for t in answers}
    return True


def _multiselect(col: _Column, answers: Counter, n_answers: int, missing: Counter) -> bool:
    """A multi-select; a missing code chosen beside other options (``"N/A"``) is an option."""
    for sep in (";", ","):
        with_sep = sum(n for t, n in answers.items() if sep in t)
        if with_sep < max(2, 0.05 * n_answers):
            continue
        parts = Counter()
        for t, n in answers.items():
            for part in t.split(sep):
                if part.strip():
                    parts[part.strip()] += n
        if len(parts) > 40 or len(parts) >= len(answers) or sum(n == 1 for n in parts.values()) > len(parts) / 2:
            continue
        for text in [t for t in missing if _key(t) in {_key(p) for p in parts}]:
            parts[text] += missing.pop(text)
        col.type = "multiselect"
        col.lines.append(f"separator = {_q(sep)}")
        _categories(col, parts, "options")
        col.notes.append(f"several answers separated by {sep!r}; counts are of respondents choosing each")
        return True
    return False


def _categories(col: _Column, answers: Counter, key: str) -> None:
    groups = _groups(answers)
    _levels(col, [c for c, _ in groups], Counter({c: sum(v.values()) for c, v in groups}),
            [c for c, _ in groups], key)
    aliases = [(text, canonical, n) for canonical, variants in groups
               for text, n in variants.items() if text != canonical]
    if aliases:
        col.tail = ["[column.aliases]  # variants folded into a category: check them"]
        col.tail += [f"{_q(text)} = {_q(canonical)}  # {n}" for text, canonical, n in aliases]
    col.answers |= {normalise_answer(t) for t in answers}


def _guess(header: str, name: str, raw: pd.Series, labels: dict | None, have_id: bool) -> tuple[_Column, Counter]:
    col = _Column(column=header, name=name)
    counts = _variants(raw)
    blank = int(len(raw) - sum(counts.values()))
    answers, missing = _split_missing(counts)
    col = _guess_type(col, header, raw, answers, missing, blank, labels, have_id)
    summary = f"{len(raw) - blank - sum(missing.values())} answers"
    if missing or blank:
        no_answer = [f"blank {blank}"] if blank else []
        no_answer += [f"{_q(t)} {n}" for t, n in missing.most_common()]
        summary += "; no answer: " + ", ".join(no_answer)
    notes = [summary]
    if any(_key(t) in _MAYBE_REAL for t in missing):
        notes.append('CHECK: "N/A" is read as no answer; if it is a real answer here (e.g. "none"), '
                     "add it to the categories or options and give the column its own 'missing' list")
    col.notes[:0] = notes
    return col, missing


def _guess_type(col: _Column, header: str, raw: pd.Series, answers: Counter, missing: Counter,
                blank: int, labels: dict | None, have_id: bool) -> _Column:
    n_answers = sum(answers.values())
    unique = blank == 0 and not missing and len(answers) == len(raw) and len(raw) > 1
    if not have_id and unique and set(_tokens(header)) & _ID_TOKENS:
        col.role = "id"
        col.notes.append("respondent id: every row has its own value")
        return col
    reason = _identifier_reason(header, answers, max(n_answers, 1))
    if reason:
        col.role = "identifier"
        col.notes.append(f"probable direct identifier ({reason}): dropped at load, never stored")
        return col
    if not answers:
        col.notes.append("no answers at all")
        return col
    if _likert(col, answers, labels) or _ordinal(col, answers):
        col.role = _role_of(header, "feature")
        return col
    numbers = {t: as_number(t) for t in answers}
    odd = {t: n for t, n in answers.items() if numbers[t] is None}
    if len(odd) < len(answers) and sum(odd.values()) <= 0.05 * n_answers and len(odd) <= 3:
        values = [v for v in numbers.values() if v is not None]
        col.type = "numeric"
        col.role = _role_of(header, "feature")
        col.lines.append(f"range = [{_num(math.floor(min(values)))}, {_num(math.ceil(max(values)))}]")
        col.notes.append("range: the lowest and highest answer; widen it to the valid range")
        if odd:
            col.extra_missing = list(odd)
            col.notes.append("CHECK: answers that are not numbers, read as no answer: "
                             + ", ".join(f"{_q(t)} {n}" for t, n in odd.items()))
        return col
    if _multiselect(col, answers, n_answers, missing):
        col.role = _role_of(header, "feature")
        return col
    if len(_groups(answers)) <= _MAX_CATEGORIES:
        col.type = "categorical"
        col.role = _role_of(header, "covariate")
        if _ORDER_WORDS.search(" ".join(answers).casefold()):
            col.check = True
        _categories(col, answers, "categories")
        return col
    col.notes.append("free text: validated, then unused")
    return col


# --------------------------------------------------------------------------
# writing the draft


_STOP_WORDS = {"a", "an", "and", "are", "by", "do", "does", "did", "for", "from", "have", "haven", "how",
               "i", "in", "is", "it", "me", "my", "of", "often", "on", "or", "scale", "t", "the", "to",
               "what", "when", "which", "you", "your", "yourself", "with"}


def _snake(header: str) -> str:
    """A short snake_case name: ``"9. How often do you find yourself..."`` -> ``find_using_social_media``."""
    text = re.sub(r"^\s*(q\s*)?\d+[.)]?\s+", "", str(header), flags=re.I)
    words = re.findall(r"[a-z0-9]+", text.casefold())
    kept = [w for w in words if w not in _STOP_WORDS and not w.isdigit()]
    return "_".join((kept or words)[:4]) or "column"


def _value_labels(path: Path, fmt: str) -> dict:
    if fmt not in ("spss", "stata"):
        return {}
    import pyreadstat

    reader = pyreadstat.read_sav if fmt == "spss" else pyreadstat.read_dta
    _, meta = reader(str(path), metadataonly=True)
    return {str(k): v for k, v in (meta.variable_value_labels or {}).items()}


def draft_codebook(path: str | Path, *, sheet: str | int | None = None) -> str:
    """Guess a codebook from a survey file.

    Parameters
    ----------
    path : str or Path
        A survey file: CSV, Qualtrics CSV, XLSX, SPSS ``.sav`` or Stata
        ``.dta`` (value labels give the answer text, and the order of
        labelled scales).
    sheet : str or int, optional
        For an XLSX file, the sheet to read (name or 0-based position).

    Returns
    -------
    str
        A TOML codebook with one ``[[column]]`` table per column of the
        file.  Every role and type is a guess, commented with the answer
        counts it rests on: Likert scales recognised from common answer
        wordings (frequency, agreement, GAD-7/PHQ-9, numbers 0 or 1 to n),
        ordinal ranges (``"Between 1 and 2 hours"``), numeric ranges,
        multi-selects, categories with their variants folded into
        ``aliases``, the respondent id, probable direct identifiers
        (role ``identifier``) and missing codes.  Guesses a person must
        check are marked ``CHECK``.

    Raises
    ------
    SurveyDataError
        When the file is missing or cannot be read.

    Examples
    --------
    >>> text = draft_codebook("survey.csv")  # doctest: +SKIP
    >>> Path("codebook.toml").write_text(text)  # doctest: +SKIP
    """
    path = Path(path)
    frame = read_survey(path, sheet=sheet)
    labels = _value_labels(path, frame.attrs.get("format", ""))
    columns, found = [], Counter()
    names: set = set()
    for header in frame.columns:
        name = base = _snake(header)
        i = 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.add(name)
        col, missing = _guess(header, name, frame[header], labels.get(header),
                              any(c.role == "id" for c in columns))
        columns.append(col)
        found.update(missing)

    codes = list(DEFAULT_MISSING_CODES)
    for text, _ in found.most_common():
        if normalise_answer(text) not in {normalise_answer(c) for c in codes}:
            codes.append(text)
    out = [f"# Draft codebook of {path.name}: {len(frame)} respondents, {len(frame.columns)} columns.",
           "# Every role, type and order below is a guess from the answers; the number beside",
           "# each level is how many respondents gave it. Read every column and correct it,",
           "# above all those marked CHECK. The format is described in docs/codebook.md.",
           "",
           "[survey]",
           f"name = {_q(_snake(path.stem))}",
           "",
           "[missing]",
           "# Answers that mean \"no answer\" in every column unless a column says otherwise.",
           "codes = [" + ", ".join(_q(c) for c in codes) + "]",
           ]
    for col in columns:
        out += ["", *_column_toml(col, codes)]
    return "\n".join(out) + "\n"


def _column_toml(col: _Column, codes: list) -> list[str]:
    lines = []
    if col.check:
        lines += ["# ---------------- CHECK THE ORDER ----------------",
                  "# These answers sound ordered but are no scale this draft knows. If they are",
                  "# ordered, make the column type = \"likert\" with levels lowest first (or",
                  "# \"ordinal\" with a map); otherwise leave it categorical."]
    lines += ["[[column]]", f"# {'; '.join(col.notes)}" if len(col.notes) == 1 else "# " + col.notes[0]]
    lines += [f"# {note}" for note in col.notes[1:]]
    lines += [f"column = {_q(col.column)}", f"name = {_q(col.name)}", f"role = {_q(col.role)}"]
    if col.role not in ("id", "identifier"):
        lines.append(f"type = {_q(col.type)}")
        clash = [c for c in codes if normalise_answer(c) in col.answers]
        if clash or col.extra_missing:
            kept = [c for c in codes if c not in clash] + col.extra_missing
            why = f"  # {', '.join(_q(c) for c in clash)} is a real answer here" if clash else ""
            lines.append("missing = [" + ", ".join(_q(c) for c in kept) + "]" + why)
        lines += col.lines + col.tail
    return lines
