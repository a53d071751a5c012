"""One rule for the addresses relance sends to: the channels' (relance/campaign/values.py)
and the warehouse's (`email_problem` in warehouse/macros.sql, which the loaders and the
engine use) give the same answer for every address, and what the rule lets through the
SendGrid stand-in accepts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from relance.campaign.values import email_problem
from relance.channels.email import HeaderError, address
from tests.fakes import sendgrid_validation

TRICKY = [
    # sendable
    "zoe@example.org", "Zoe.Lefevre@Example.ORG", "o'neil+relance@mail.example",
    "#!$%&'*+-/=?^_`{}|~@example.org", "a@b.co", "x@sub-1.sub.example.museum",
    "jose@xn--caf-dma.fr", "a@xn--p1ai", "1234@example.org", "a" * 64 + "@example.org",
    "a@" + ".".join(["b" * 63] * 3) + "." + "c" * 59,                   # 254 in all
    # not ASCII: SMTPUTF8 for the local part, xn-- for the domain
    "élodie@example.org", "jose@café.fr", "e\u0301@example.org", "zoe@exa\u200bmple.org",
    "ſ@example.org", "\u212a@example.org", "zoe@example.org\u00a0", "用户@例子.广告",
    # malformed
    "", "@example.org", "zoe@", "zoe", "zoe@example", "zoe@@example.org", "zoe@ex@ample.org",
    "zoe..lefevre@example.org", ".zoe@example.org", "zoe.@example.org",
    "zoe@-example.org", "zoe@example-.org", "zoe@example..org", "zoe@.example.org",
    "zoe@example.org.", "zoe@example.c", "zoe@example.123", "zoe@ex_ample.org",
    "zoe lefevre@example.org", " zoe@example.org", "zoe@example.org ", "zoe@example.org\n",
    "zoe\r\n@example.org", "zoe\x00@example.org", "zoe\t@example.org", '"zoe lefevre"@example.org',
    "zoe(comment)@example.org", "<zoe@example.org>", "Zoe <zoe@example.org>",
    "zoe@example.org,eve@example.org", "zoe;eve@example.org", "zoe@[192.0.2.1]",
    "zoe\\@example.org", "zoe@exam\"ple.org", "a@" + "b" * 64 + ".org",
    # too long
    "a" * 65 + "@example.org", "a@" + ".".join(["b" * 63] * 3) + "." + "c" * 60,
]


@pytest.fixture(scope="module")
def sql():
    """One warehouse for every example Hypothesis tries (opening one migrates it)."""
    import warehouse
    con = warehouse.connect(":memory:")
    yield con
    con.close()


def sql_problems(con, addresses: list[str]) -> list[str | None]:
    con.execute("create or replace temp table probe (i integer, a varchar)")
    con.executemany("insert into probe values (?, ?)", list(enumerate(addresses)))
    return [r[0] for r in con.execute("select email_problem(a) from probe order by i").fetchall()]


def test_the_channels_and_the_warehouse_judge_every_tricky_address_alike(sql):
    python = [email_problem(a) for a in TRICKY]
    assert sql_problems(sql, TRICKY) == python
    # both halves of the corpus are there, and each kind of problem
    assert python.count(None) == 11 and {"non-ASCII", "malformed", "too long"} <= set(python)
    for a, problem in zip(TRICKY, python):
        if problem is None:       # an e-mail channel writes it into a header as it is
            assert address("Zoé", a).endswith(f" <{a}>")
        else:
            with pytest.raises(HeaderError, match="cannot send to"):
                address("Zoé", a)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(
    "aZ09.-_+'@@@ \"\\<>,;()[]\x00\n\té\u0301ſ\u212a\u200b"), max_size=30), min_size=1, max_size=40))
def test_any_text_gets_the_same_answer_in_python_and_in_sql(sql, addresses):
    assert sql_problems(sql, addresses) == [email_problem(a) for a in addresses]


def test_every_address_relance_sends_to_the_sendgrid_stand_in_accepts():
    """The rule is stricter than SendGrid's: nothing the engine plans comes back as a 400."""
    for a in TRICKY:
        if email_problem(a) is None:
            assert sendgrid_validation.EMAIL.match(a) and a.partition("@")[0].isascii(), a
