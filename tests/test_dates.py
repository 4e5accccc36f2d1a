"""Tests for the date normalisation task (tasks/alignment.py): every format written and read back,
the samples (real dates, their right answers, the layout, seeding), typed dates and the one-line
errors for dates that do not exist, and which input characters each output character copies."""

from __future__ import annotations

import calendar
import datetime
import json

import numpy as np
import pytest
import torch

from ntmviz.errors import ConfigError
from ntmviz.tasks import get_task, task_from_dict
from ntmviz.tasks.alignment import DATE_CHARACTERS, FORMATS, OUTPUT_CHARACTERS, Dates, write_date

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]


@pytest.fixture
def dates():
    return get_task("dates")


def some_dates(count: int, seed: int = 0) -> list[datetime.date]:
    rng = np.random.default_rng(seed)
    first, last = datetime.date(1950, 1, 1).toordinal(), datetime.date(2049, 12, 31).toordinal()
    return [datetime.date.fromordinal(int(d)) for d in rng.integers(first, last + 1, count)] + [
        datetime.date(2000, 2, 29), datetime.date(1950, 1, 1), datetime.date(2049, 12, 31),
        datetime.date(2011, 11, 11), datetime.date(2022, 9, 22), datetime.date(2013, 1, 3)]


# ---- writing and reading --------------------------------------------------------------------------

def test_the_formats_as_written():
    d = datetime.date(1999, 3, 3)
    assert [write_date(d, f)[0] for f in range(len(FORMATS))] == [
        "3 march 1999", "03/03/99", "march 3rd, 1999", "3 mar 1999", "03.03.1999", "1999-03-03", "mar 3, 1999"]
    assert write_date(datetime.date(2011, 11, 21), 2)[0] == "november 21st, 2011"
    assert write_date(datetime.date(2012, 12, 12), 2)[0] == "december 12th, 2012"
    assert write_date(datetime.date(2002, 1, 22), 2)[0] == "january 22nd, 2002"


@pytest.mark.parametrize("form", range(len(FORMATS)))
def test_every_written_date_reads_back_with_its_fields(dates, form):
    for d in some_dates(150, seed=form):
        text, spans = write_date(d, form)
        written, parsed, found = dates.parse_date(text)
        assert (written, parsed) == (text, d)
        assert found == spans
        # the fields are where a person sees them
        day = text[slice(*spans["day"])]
        assert int(day.rstrip("stndrh")) == d.day
        month = text[slice(*spans["month"])]
        assert month in (MONTHS[d.month - 1], MONTHS[d.month - 1][:3], f"{d.month:02d}")
        assert int(text[slice(*spans["year"])]) in (d.year, d.year % 100)


def test_two_digit_years_name_one_year_of_the_range(dates):
    assert dates.parse_date("03/03/99")[1] == datetime.date(1999, 3, 3)
    assert dates.parse_date("03/03/01")[1] == datetime.date(2001, 3, 3)
    assert dates.parse_date("01.01.50")[1] == datetime.date(1950, 1, 1)
    assert dates.parse_date("31/12/49")[1] == datetime.date(2049, 12, 31)
    later = Dates(min_year=2000, max_year=2030)
    assert later.parse_date("1 may 05")[1] == datetime.date(2005, 5, 1)
    with pytest.raises(ConfigError, match="'45' names no year between 2000 and 2030"):
        later.parse_date("1 may 45")


def test_what_a_person_may_type(dates):
    for text in ("March 3rd, 1999", "march 3 1999", "  3   MAR 1999 ", "3rd march 1999", "sept 9, 1999",
                 "3.3.1999", "1999-3-3", "3/3/99", "mar 3rd 1999"):
        written, parsed, _ = dates.parse_date(text)
        assert parsed == (datetime.date(1999, 9, 9) if text.startswith("sept") else datetime.date(1999, 3, 3)), text
        assert written == " ".join(text.lower().split())
    assert dates.parse("March 3rd, 1999") == (list("march 3rd, 1999"), list("1999-03-03"))


@pytest.mark.parametrize("text, says", [
    ("31 february 2001", "'31 february 2001' is not a date: february 2001 has 28 days"),
    ("29 february 2001", "february 2001 has 28 days"),
    ("31/04/99", "april 1999 has 30 days"),
    ("2001-13-01", "there is no month 13"),
    ("0 may 1999", "may 1999 has 31 days"),
    ("3 marhc 1999", "'marhc' is not a month"),
    ("3 march 1850", "1850 is outside this task's years, 1950 to 2049"),
    ("3 march 1999!", "not !"),
    ("tomorrow", "is not a date written as one of"),
    ("", "type a date"),
    ("1999", "is not a date written as one of"),
])
def test_dates_that_do_not_exist_are_one_line_errors(dates, text, says):
    with pytest.raises(ConfigError) as err:
        dates.parse(text)
    assert says in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        dates.typed_batch(text)


def test_leap_days(dates):
    assert dates.parse_date("29 february 2000")[1] == datetime.date(2000, 2, 29)
    assert dates.parse_date("29/02/04")[1] == datetime.date(2004, 2, 29)
    for year in range(1950, 2050):
        leap = calendar.isleap(year)
        if leap:
            dates.parse(f"29 february {year}")
        else:
            with pytest.raises(ConfigError):
                dates.parse(f"29 february {year}")


# ---- samples -------------------------------------------------------------------------------------------

def decode(dates: Dates, batch, b: int) -> tuple[str, str]:
    n = int(batch.lengths[b])
    x, y, mask = batch.inputs[b, :n].numpy(), batch.targets[b, :n].numpy(), batch.mask[b, :n].numpy()
    L = int(np.flatnonzero(x[:, -1])[0])
    assert x[:L, :-1].sum(-1).tolist() == [1] * L and x[L].sum() == 1 and not x[L + 1:].any()
    assert np.flatnonzero(mask).tolist() == list(range(L + 1, n)) and n - L - 1 == 10
    assert y[mask > 0].sum(-1).tolist() == [1] * 10 and not y[mask == 0].any()
    text = "".join(DATE_CHARACTERS[i] for i in x[:L, :-1].argmax(-1))
    return text, "".join(OUTPUT_CHARACTERS[i] for i in y[mask > 0].argmax(-1))


def test_samples_are_real_dates_with_their_iso_form(dates):
    batch = dates.sample(300, seed=1)
    for b in range(300):  # padding after each item: nothing
        n = int(batch.lengths[b])
        assert not batch.inputs[b, n:].any() and not batch.targets[b, n:].any() and not batch.mask[b, n:].any()
    seen_formats, years = set(), []
    for b in range(300):
        text, target = decode(dates, batch, b)
        written, date, _ = dates.parse_date(text)
        assert written == text and target == date.isoformat()
        seen_formats.add(next(f for f in range(len(FORMATS)) if write_date(date, f)[0] == text))
        years.append(date.year)
    assert seen_formats == set(range(len(FORMATS)))
    assert 1950 <= min(years) and max(years) <= 2049 and max(years) - min(years) > 80


def test_one_format_and_the_eval_variants(dates):
    only = dates.at(2)
    batch = only.sample(40, seed=0)
    for b in range(40):
        text, _ = decode(only, batch, b)
        assert "/" in text and len(text) == 8
    assert [label for label, _ in dates.eval_variants()] == [name for name, _ in FORMATS]
    assert dates.largest_size == 0 and dates.at(dates.largest_size) == dates


def test_sampling_is_seeded(dates):
    a, b = dates.sample(8, seed=5), dates.sample(8, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(dates.sample(8, seed=6).inputs[:, :5], a.inputs[:, :5])


def test_configuration(dates):
    assert task_from_dict(json.loads(json.dumps(dates.to_dict()))) == dates
    assert dates.input_labels[-1] == "delim" and dates.input_labels[0] == "␣"
    assert dates.output_labels == tuple("0123456789-")
    assert dates.required_slots() == len("september 30th, 2000")
    for bad, says in ((dict(min_year=2000, max_year=1999), "larger"), (dict(min_year=1900, max_year=2049), "100"),
                      (dict(format=8), "format"), (dict(format=-1), "format")):
        with pytest.raises(ConfigError, match=says):
            Dates(**bad)


def test_typed_batch_is_the_sampled_layout(dates):
    batch = dates.typed_batch("March 3rd, 1999")
    assert decode(dates, batch, 0) == ("march 3rd, 1999", "1999-03-03")
    assert dates.render(batch, 0).splitlines()[1] == "march 3rd, 1999 -> 1999-03-03"


# ---- the alignment ---------------------------------------------------------------------------------------

def test_each_output_character_copies_its_field(dates):
    # written out by hand: "march 3rd, 1999" has month 0-4, day 6-8 ("3rd"), year 11-14
    sources = dates.sources(list("march 3rd, 1999"))
    year, month, day = (11, 12, 13, 14), (0, 1, 2, 3, 4), (6, 7, 8)
    assert sources == [year] * 4 + [()] + [month] * 2 + [()] + [(), day]  # "03": the 0 is not written
    assert dates.sources(list("march 13th, 1999"))[8:] == [(6, 7, 8, 9)] * 2
    # "03/03/99": day 0-1, month 3-4, year 6-7; the century is not written, so it copies nothing
    assert dates.sources(list("03/03/99")) == [()] * 2 + [(6, 7)] * 2 + [()] + [(3, 4)] * 2 + [()] + [(0, 1)] * 2
    # "3.3.1999": a one-digit day and month: their leading zeros copy nothing
    assert dates.sources(list("3.3.1999")) == [(4, 5, 6, 7)] * 4 + [(), (), (2,), (), (), (0,)]
    # "mar 3, 1999": the month's two digits both come from its name
    assert dates.sources(list("mar 3, 1999")) == [(7, 8, 9, 10)] * 4 + [(), (0, 1, 2), (0, 1, 2), (), (), (4,)]
    with pytest.raises(ConfigError):
        dates.sources(list("31 february 2001"))


def test_the_mechanism_does_not_apply_to_an_input_that_is_not_a_date(dates):
    from ntmviz.tasks.mechanism import Trace

    batch = dates.typed_batch("3 march 1999")
    inputs = batch.inputs[0].numpy().copy()
    inputs[0, :-1] = 0
    inputs[0, DATE_CHARACTERS.index("x")] = 1  # "x march 1999"
    reading = dates.measure_mechanisms(Trace(inputs, np.zeros((23, 1, 12), np.float32), np.zeros((23, 0, 12))))
    assert np.isnan(reading["aligned"].value) and "not one of this task's" in reading["aligned"].note
