"""Numbers in answer and passage text, read by value however they are written.

An answer sentence's number that neither the question nor the cited passage has was made up (see
cite.py), so numbers are compared by value: "1000000" = "1,000,000" = "١٬٠٠٠٬٠٠٠" = "مليون" =
"1 million"; "1.5 مليون" = "١٫٥ مليون" = "مليون ونصف" = "one and a half million" = 1500000.
"""

from __future__ import annotations

import re
from decimal import Decimal

from assistant.arabic import normalize

# No library on PyPI read these forms (pyarabic 0.6.15: "مليون ونصف" and "1.5 مليون" -> 1000000,
# "ثلاث مئة" -> 103, "الف" -> 0; word2number 1.1: "2 million" -> 1000000; text2num 3.1.0:
# "2 million" -> "2 1000000"), hence this small reader of the forms answers use.
# Not read as numbers, as they mostly are none: a lone "one"/"واحد"/"أحد" ("one of them"), plurals
# without a count ("آلاف", "thousands"), a lone "نصف"/"half" ("نصف الأراضي"), ordinals ("التاسع
# عشر"), words with the article ("الاثنين" is Monday), nouns in the dual ("سنتين").
def _words(kind: str, spelled: str, value: int | str, step: int = 0) -> dict[str, tuple[str, Decimal]]:
    """Lexicon entries: the space-separated numbers of ``spelled`` (forms of one joined by "/") are
    ``value``, ``value + step``, …; stored normalized, as ``prepared_text`` text has them."""
    return {
        normalize(form).lower(): (kind, Decimal(value) + i * step)
        for i, forms in enumerate(spelled.split())
        for form in forms.split("/")
    }


_NUMBER_WORDS: dict[str, tuple[str, Decimal]] = {
    **_words("unit", "واحد/واحدة/أحد/إحدى اثنان/اثنين/اثنتان/اثنتين/اثنا/اثني/اثنتا/اثنتي ثلاث/ثلاثة أربع/أربعة "
             "خمس/خمسة ست/ستة سبع/سبعة ثمان/ثماني/ثمانية تسع/تسعة", 1, 1),
    **_words("ten", "عشر/عشرة", 10),  # 10, or 11-19 right after a unit ("خمسة عشر")
    **_words("tens", "عشرون/عشرين ثلاثون/ثلاثين أربعون/أربعين خمسون/خمسين ستون/ستين سبعون/سبعين "
             "ثمانون/ثمانين تسعون/تسعين", 20, 10),
    **_words("hundred", "مئة/مائة", 100),
    **_words("hundreds", "مئتان/مئتين/مئتا/مئتي/مائتان/مائتين/مائتا/مائتي ثلاثمئة/ثلاثمائة أربعمئة/أربعمائة "
             "خمسمئة/خمسمائة ستمئة/ستمائة سبعمئة/سبعمائة ثمانمئة/ثمانمائة/ثمانيمئة/ثمانيمائة تسعمئة/تسعمائة", 200, 100),
    **_words("scale", "ألف/ألفا", 1000),
    **_words("scale", "مليون/مليونا", 1_000_000),
    **_words("scale", "مليار/مليارا/بليون", 1_000_000_000),
    **_words("scales", "آلاف", 1000),  # plurals: a number only after a count ("ثلاثة آلاف")
    **_words("scales", "ملايين", 1_000_000),
    **_words("scales", "مليارات", 1_000_000_000),
    **_words("dual", "ألفان/ألفين/ألفي", 1000),  # two of the scale
    **_words("dual", "مليونان/مليونين/مليوني", 1_000_000),
    **_words("dual", "ملياران/مليارين/ملياري", 1_000_000_000),
    **_words("fraction", "نصف", "0.5"),
    **_words("fraction", "ربع", "0.25"),
    **_words("unit", "one two three four five six seven eight nine", 1, 1),
    **_words("teen", "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen", 10, 1),
    **_words("tens", "twenty thirty forty fifty sixty seventy eighty ninety", 20, 10),
    **_words("hundred", "hundred", 100),
    **_words("scale", "thousand", 1000),
    **_words("scale", "million", 1_000_000),
    **_words("scale", "billion", 1_000_000_000),
    **_words("scales", "hundreds", 100),
    **_words("scales", "thousands", 1000),
    **_words("scales", "millions", 1_000_000),
    **_words("scales", "billions", 1_000_000_000),
    **_words("fraction", "half", "0.5"),
    **_words("glue", "a an", 0),
    **_words("and", "and و", 0),
}
# "التاسع عشر" (nineteenth): the "عشر" after an ordinal is no ten.
_ORDINALS = frozenset(normalize(w) + end for w in "حادي ثاني ثالث رابع خامس سادس سابع ثامن تاسع".split() for end in ("", "ه"))
_CLITICS = (("و", True), ("ب", False), ("ل", False), ("ك", False), ("ف", False), ("وب", False), ("ول", False))
_NUMBER_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+")
_JOINING = re.compile(r"[ \t\u00a0\-\u2010\u2013]*")  # what may stand between the words of one number
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")  # 1,000,000 and 1,000.5
_GROUPED_DOTS = re.compile(r"\d{1,3}(?:\.\d{3}){2,}(?:,\d+)?")  # 1.000.000
_DECIMAL = re.compile(r"\d+[.,]\d+")  # 1.5, 1,5
_Token = tuple[int, int, str, Decimal, bool]  # start, end, kind, value, joined by a leading "و"


def prepared_text(text: str) -> str:
    """Normalized (ASCII digits, one form per letter), lowercased, the Arabic decimal and thousands
    separators ("١٫٥", "١٬٠٠٠") as "." and ","."""
    text = normalize(text).replace("٫", ".").replace("٬", ",").lower()
    return re.sub(r"(?<=\d)،(?=\d)", ",", text)


def _figures(run: str) -> list[Decimal]:
    """The value of a run of digits and separators, or the values when it holds several ("29.07.2020")."""
    if _GROUPED.fullmatch(run):
        return [Decimal(run.replace(",", ""))]
    if _GROUPED_DOTS.fullmatch(run):
        return [Decimal(run.replace(".", "").replace(",", "."))]
    if _DECIMAL.fullmatch(run):
        return [Decimal(run.replace(",", "."))]
    return [Decimal(part) for part in re.split(r"[.,]", run) if part]


def _number_word(word: str, previous: str) -> tuple[str, Decimal, bool] | None:
    """(kind, value, joined by "و") of a number word, Arabic clitics taken off ("وعشرون", "بمليون"
    with at least three letters left, so "لست" (I am not) is no six), else None."""
    for clitic, joined in (("", False), *_CLITICS):
        rest = word[len(clitic) :]
        if word.startswith(clitic) and rest in _NUMBER_WORDS and (not clitic or len(rest) >= 3):
            kind, value = _NUMBER_WORDS[rest]
            if clitic and kind in ("glue", "and"):
                return None
            if kind == "ten" and previous.removeprefix("ال") in _ORDINALS:
                return None
            return kind, value, joined
    return None


def _number_tokens(text: str) -> list[_Token]:
    """The tokens of ``prepared_text`` text: figures, number words, and "break" for anything else."""
    tokens: list[_Token] = []
    last, previous = 0, ""
    for m in _NUMBER_TOKEN.finditer(text):
        if tokens and not _JOINING.fullmatch(text, last, m.start()):
            tokens.append((last, m.start(), "break", Decimal(0), False))
        last, run = m.end(), m.group(0)
        if run[0].isdigit():
            figures = _figures(run)
            kind = "figure" if len(figures) == 1 else "alone"  # several in one run: each stands alone
            tokens.extend((m.start(), m.end(), kind, figure, False) for figure in figures)
        elif word := _number_word(run, previous):
            tokens.append((m.start(), m.end(), *word))
        else:
            tokens.append((m.start(), m.end(), "break", Decimal(0), False))
        previous = run
    return tokens


def _number_at(tokens: list[_Token], i: int) -> tuple[tuple[int, int, Decimal] | None, int]:
    """The number whose words start at ``tokens[i]`` as (start, end, value), or None, and the index
    after it.

    Arabic puts units before tens ("خمسة وعشرون" = 25), English after ("twenty-five"). A count
    before a hundred or a scale multiplies it ("ثلاث مئة", "3 آلاف", "1.5 million"); what follows a
    scale adds to it ("ألفين وتسعة عشر" = 2019), a half after it is half of it ("مليون ونصف"), a half
    before it too ("نصف مليون", "half a million"). A figure takes only a scale after it, and
    follows words only after a scale and "و" ("مليون و500 ألف")."""
    if tokens[i][2] == "alone":
        return tokens[i][:2] + (tokens[i][3],), i + 1
    total = group = Decimal(0)
    scale: Decimal | None = None  # the last scale; a later one must be smaller
    fraction: Decimal | None = None  # a leading half, waiting for its scale
    figure = halved = False
    parts, start, end, joined = 0, 0, 0, False  # joined: an "and"/"و" since the last part
    k = done = i
    while k < len(tokens):
        t_start, t_end, kind, value, prefixed = tokens[k]
        if kind in ("glue", "and"):
            joined, k = joined or kind == "and", k + 1
            continue
        joined = joined or prefixed
        started = parts > 0 or fraction is not None
        adding = started and not figure and fraction is None  # may this word add to the group?
        if not started and kind in ("figure", "unit", "ten", "teen", "tens", "hundred", "hundreds"):
            group, figure = value, kind == "figure"
        elif not started and kind == "fraction":
            fraction, start, joined, k = value, t_start, False, k + 1
            continue
        elif adding and kind == "unit" and (group % 100 == 0 or (not joined and group % 10 == 0 and group % 100 > 10)):
            group += value  # "ألف وخمسة", "twenty-five"
        elif adding and kind in ("ten", "teen") and (group % 100 == 0 or (kind == "ten" and not joined and group % 100 < 10)):
            group += value  # "مئة وعشرة", "خمسة عشر"
        elif adding and kind == "tens" and (group % 100 == 0 or (joined and group % 100 < 10)):
            group += value  # "خمسة وعشرون"
        elif started and fraction is None and kind == "hundred" and not joined and 0 < group < 10 and group % 1 == 0:
            group *= value  # "ثلاث مئة", "three hundred"
        elif adding and kind in ("hundred", "hundreds") and group == 0:
            group = value  # "ألف ومئة", "ألف وخمسمائة"
        elif started and kind == "figure" and joined and group == 0 and fraction is None and scale is not None and value < scale:
            group, figure = value, True  # "مليون و500 ألف"
        elif kind in ("scale", "scales", "dual") and (scale is None or value < scale):
            if fraction is not None and kind == "scale":
                total, fraction = fraction * value, None  # "نصف مليون"
            elif group and not joined and kind != "dual" and fraction is None:
                total, group = total + group * value, Decimal(0)  # "ثلاثة آلاف", "1.5 مليون"
            elif group or fraction is not None or kind == "scales" or (started and not joined):
                break
            else:
                total += 2 * value if kind == "dual" else value  # "مليون", "ألفين", "… وألف"
            scale = value
        elif started and kind == "fraction" and joined and not halved and fraction is None:
            if group == 0 and scale is not None:
                total += value * scale  # "مليون ونصف", "3 ملايين ونصف", "a million and a half"
            elif group and scale is None and not figure:
                group += value  # "ثلاثة ونصف", "one and a half (million)"
            else:
                break
            halved = True
        else:
            break
        start = start if started else t_start
        end, parts, joined = t_end, parts + 1, False
        k = done = k + 1
    if done == i:  # nothing here (or only a lone half): read on after this token
        return None, i + 1
    value = total + group
    if parts == 1 and value == 1 and not figure:  # a lone "one"/"واحد"/"أحد": mostly no number
        return None, done
    return (start, end, value), done


def number_spans(prepared: str) -> list[tuple[int, int, Decimal]]:
    """(start, end, value) of each number in ``prepared_text`` text, in order."""
    tokens, spans, i = _number_tokens(prepared), [], 0
    while i < len(tokens):
        found, i = _number_at(tokens, i)
        if found:
            spans.append(found)
    return spans


def numbers(text: str) -> list[Decimal]:
    """The values of the numbers in ``text``: figures in any digits, words in Arabic or English."""
    return [value for _, _, value in number_spans(prepared_text(text))]
