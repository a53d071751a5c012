"""The render budget: what one template may cost, in time and in size, wherever it is
rendered (`validate`'s trial renders, previews, delivery, digests, team announcements).

A template is code run once per learner: a loop too long, a repetition too large or a
macro calling itself would hang `validate` or a delivery, or write a message of a
gigabyte. Jinja2's sandbox keeps a template away from Python's internals, not from
spending; relance/campaign/sandbox.py adds the budget to it, with the checks below:

- *time*: each render may take `MAX_SECONDS` of CPU. It is checked where a template can
  spend without end: every loop's iterations, every call (a macro calling itself), every
  included template; one check costs a read of the wall clock (the CPU clock only once a
  render has lasted `FREE_WALL`: see `over_time`), and a short loop none per item.
- *size*: a rendered template (a subject, a text, an HTML body) and every value built
  on the way may hold `MAX_CHARS` characters. The output is counted as it streams (and
  every `{% set %}` block and macro's); what multiplies a size (`*`, `**`, `%` with a
  width, `center`, `indent`, `replace`, `join`, str methods given a size) is refused
  *before* it allocates; anything else is checked as it is built (`~`, `+`, each
  filter's and call's result, what a namespace or a list is given).

What exceeds either is refused with `RenderBudgetExceeded`, naming the template file
and line. The budget is part of the campaign format, like its fields: not a setting, so
that a campaign `validate` accepts on a laptop renders the same way at delivery.
"""

from __future__ import annotations

import re
import sys
import threading
from functools import wraps
from itertools import chain
from time import perf_counter as _wall
from time import thread_time as render_clock  # see MAX_SECONDS
from typing import Any, Callable

from jinja2 import TemplateRuntimeError

# One render of one template, in the rendering thread's CPU time (a message's usually
# takes < 1 ms): what the template itself spends, as on the laptop `validate` ran on. Not
# the wall clock: on a busy machine (2 cores, 20 processes) an ordinary message waiting
# for a core went over a wall-clock second and failed its delivery; a template looping
# for ever still spends CPU, and is stopped after a second of it (a template cannot wait
# on anything else: no I/O in the sandbox).
MAX_SECONDS = 1.0
MAX_CHARS = 1_000_000      # one rendered template, and any value built while rendering it
MAX_RANGE = 10_000         # items of range(); Jinja2's own limit is 100,000
MAX_INT_BITS = 1 << 16     # an integer of ~20,000 digits: more is no number a message shows
SHORT_LOOP = 256           # a loop this short is timed once, not per item
# The wall-clock time a render runs before its CPU clock is read at all (see over_time).
FREE_WALL = 0.01


class _Clock(threading.local):
    # the render under way on this thread: when it started (wall clock), and its CPU
    # deadline once it has lasted FREE_WALL (None before)
    started: float | None = None
    deadline: float | None = None


clock = _Clock()


def start() -> bool:
    """A render's budget starts now, unless a render is under way on this thread (a
    render inside a render: the first's budget); whether it started (then `stop()` after)."""
    if clock.started is not None:
        return False
    clock.started, clock.deadline = _wall(), None
    return True


def stop() -> None:
    clock.started = clock.deadline = None


class RenderBudgetExceeded(TemplateRuntimeError):
    """A template went over its time or size budget; says which file, which line, what to
    change."""

    def __init__(self, reason: str, path: str | None, line: int | None):
        self.reason, self.path, self.line = reason, path, line
        where = f"{path}:{line}" if path and line else (path or "template")
        super().__init__(f"{where}: {reason}")


def refuse(reason: str, generator=None) -> RenderBudgetExceeded:
    """The error, located at the template line being run: the innermost template frame on
    the stack, or, for output counted as it streams, where the template's generator
    stopped."""
    from pathlib import Path

    from relance.campaign.problems import display
    found = None
    frame = sys._getframe(1)
    while frame is not None and found is None:
        if "__jinja_template__" in frame.f_globals:
            found = frame
        frame = frame.f_back
    while found is None and generator is not None:     # down to the innermost template
        frame = getattr(generator, "gi_frame", None)
        inner = getattr(generator, "gi_yieldfrom", None)
        if frame is not None and "__jinja_template__" in frame.f_globals and not (
                inner is not None and "__jinja_template__" in getattr(
                    getattr(inner, "gi_frame", None), "f_globals", {})):
            found = frame
        generator = inner
    if found is None:
        return RenderBudgetExceeded(reason, None, None)
    template = found.f_globals["__jinja_template__"]
    path = display(Path(template.filename)) if template.filename else template.name
    return RenderBudgetExceeded(reason, path, template.get_corresponding_lineno(found.f_lineno))


def over_time() -> bool:
    """Whether the render under way has spent its time budget. The CPU clock is a system
    call (0.6 us here) and the checks run at every loop, call and filter: reading it at
    each took 15-40 % of a render worker's samples on the weekly recap. The wall clock is
    read from memory (0.05 us), and a thread spends no more CPU than the wall time that
    passes: so a render reads its CPU clock only once it has lasted FREE_WALL (a message
    renders in about a millisecond: almost none do), and from then on may spend
    MAX_SECONDS of CPU. A render is stopped after at most MAX_SECONDS + FREE_WALL of CPU."""
    started = clock.started
    if started is None:
        return False
    deadline = clock.deadline
    if deadline is None:
        if _wall() - started < FREE_WALL:
            return False
        clock.deadline = render_clock() + MAX_SECONDS
        return False
    return render_clock() > deadline


TOO_LONG = (f"rendering took more than {MAX_SECONDS:g} s, a template's time budget: a loop "
             "too long (nested loops, a large range()) or a macro calling itself? Loop over "
             "the learner's own data instead")


def _size(value: Any) -> int:
    """Characters (or items) a value holds, two levels deep: a list of texts counts its
    texts, a list of lists their items."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return len(value) if isinstance(value, (set, frozenset)) else 0
    return len(value) + sum(len(v) for v in value if isinstance(v, (str, list, tuple, dict)))


def too_big(size: int, what: str) -> RenderBudgetExceeded:
    return refuse(f"{what} would hold {size:,} characters, more than the {MAX_CHARS:,} a "
                   "template may build (its size budget): repeat less, or show a part")


def check_size(value: Any, what: str) -> Any:
    size = len(value) if type(value) is str else _size(value)
    if size > MAX_CHARS:
        raise too_big(size, what)
    return value


def check_width(width: Any, what: str) -> None:
    if isinstance(width, int) and width > MAX_CHARS:
        raise too_big(width, what)


# -- formats: a width or precision is a size ------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*:([^{}]*)\}")
_NESTED = re.compile(r"\{[^{}]*:[^{}]*\{")


def check_format(fmt: str, args: Any) -> None:
    """`'%9999999999d' % 1`, `'{:>9999999999}'.format(1)`: a width allocates its size."""
    numbers = [n for m in _PERCENT_SPEC.finditer(fmt) for n in m.groups() if n]
    numbers += re.findall(r"\d+", " ".join(_BRACE_SPEC.findall(fmt)))
    starred = "*" in numbers or _NESTED.search(fmt)
    for n in numbers:
        if n != "*" and (len(n) > 7 or int(n) > MAX_CHARS):
            raise refuse(f"a width of {n[:12]}{'...' if len(n) > 12 else ''} in this format: "
                          f"more than the {MAX_CHARS:,} characters a template may build (its "
                          "size budget)")
    if starred:    # a width given as an argument
        values = args.values() if isinstance(args, dict) else (
            args if isinstance(args, (list, tuple)) else [args])
        for value in values:
            check_width(value, "a width in this format")


# -- what multiplies a size, checked before it allocates ------------------------------------------

def check_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and not isinstance(right, int):
        left, right = right, left
    if isinstance(left, (str, list, tuple)) and isinstance(right, int):
        if right > 1 and _size(left) * right > MAX_CHARS:
            raise too_big(_size(left) * right, "this repetition (`*`)")
    elif isinstance(left, int) and isinstance(right, int):
        if abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
            raise refuse("this product (`*`) is a number too large to show: more than "
                          f"{MAX_INT_BITS:,} bits (the render's size budget)")


def check_power(base: Any, exponent: Any) -> None:
    if (isinstance(base, int) and isinstance(exponent, int) and exponent > 0
            and abs(base) > 1 and abs(base).bit_length() * exponent > MAX_INT_BITS):
        raise refuse(f"this power (`**`) is a number too large to show: more than "
                      f"{MAX_INT_BITS:,} bits (the render's size budget)")


def _replaced(s: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        n = s.count(old) if old else len(s) + 1
        if isinstance(count, int) and count >= 0:
            n = min(n, count)
        size = len(s) + n * (len(new) - len(old))
        if size > MAX_CHARS:
            raise too_big(size, "this replace")


def _joined(items: Any, sep: Any) -> None:
    if isinstance(items, (list, tuple)):
        size = _size(items) + max(len(items) - 1, 0) * len(str(sep))
        if size > MAX_CHARS:
            raise too_big(size, "this join")


def _indented(s: Any, width: Any = 4, *_args: Any, **_kwargs: Any) -> None:
    if isinstance(s, str):
        w = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        size = len(s) + (s.count("\n") + 1) * w
        if size > MAX_CHARS:
            raise too_big(size, "this indent")


def _inserted(s: Any, inserted: Any, what: str) -> None:
    """A text with `inserted` added at each line or word, at most."""
    if isinstance(s, str) and isinstance(inserted, str):
        size = len(s) + (s.count(" ") + s.count("\n") + 1) * (len(inserted) + 1)
        if size > MAX_CHARS:
            raise too_big(size, what)


def _collected(value: Any, what: str) -> Any:
    """A lazy sequence (a `map` over a range, say) gathered into a list, refused as soon
    as what it gathered passes the budget: before it is all in memory."""
    if isinstance(value, (str, list, tuple, dict, set, frozenset, range)) or not hasattr(
            value, "__iter__"):
        return value
    out, size = [], 0
    for item in value:
        size += 1 + (len(item) if isinstance(item, str) else 0)
        if size > MAX_CHARS:
            raise too_big(size, what)
        out.append(item)
    return out


def _check_count(n: Any, limit: int, what: str) -> None:
    if isinstance(n, int) and n > limit:
        raise refuse(f"{what} of {n:,}: at most {limit:,} (the render's size budget)")


# the filters that multiply a size, their arguments checked first (without the context,
# environment or eval context a filter may be passed)
_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": lambda value, width=80: check_width(width, "this center"),
    "indent": _indented,
    "format": lambda value, *args, **kwargs: check_format(str(value), kwargs or args),
    "replace": lambda s, old, new, count=None: _replaced(
        str(s), str(old), str(new), -1 if count is None else count),
    "join": lambda value, d="", attribute=None: _joined(value, d),
    "batch": lambda value, linecount, fill_with=None: _check_count(
        linecount if fill_with is not None else 0, MAX_CHARS, "a batch filled"),
    "slice": lambda value, slices, fill_with=None: _check_count(slices, MAX_RANGE, "slices"),
    "sum": lambda value, *args, **kwargs: check_size(value, "this sum"),
    "wordwrap": lambda s, width=79, break_long_words=True, wrapstring=None, *args: _inserted(
        s, wrapstring, "this wordwrap"),
    "urlize": lambda value, trim_url_limit=None, nofollow=False, target=None, rel=None, *args:
        _inserted(value, f"{target or ''}{rel or ''}", "this urlize"),
}
# filters that take constant time, or linear time in C, and return at most a few times what
# they were given, whatever their arguments, even applied again and again: left as they are
# (a message calls them a few times each; the values they are given are within the budget)
_UNWRAPPED = {"date", "datetime", "weekday", "number", "percent", "length", "count",
              "default", "d", "first", "int", "float", "abs", "round", "bool", "e", "escape",
              "safe", "lower", "upper", "capitalize", "title", "trim", "wordcount",
              "filesizeformat", "truncate", "attr", "striptags"}
# the filters that take a whole sequence in: a lazy one is gathered under the budget first
_GATHERING = {"join", "list", "sum", "sort", "unique", "reverse", "slice", "groupby", "last",
              "random"}


def budgeted_filter(name: str, func: Callable) -> Callable:
    """`func` under the budget: its arguments checked first if it multiplies a size, a
    lazy input gathered under the budget, its result's size and the time checked after
    (a filter runs on every message: this costs a type check and a clock read)."""
    if name in _UNWRAPPED:
        return func
    check = _FILTER_CHECKS.get(name)
    gather = name in _GATHERING
    at = 1 if getattr(func, "jinja_pass_arg", None) else 0    # the value's place
    result_of, input_of = f"the result of `{name}`", f"the input of `{name}`"

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        if gather and len(args) > at:
            args = (*args[:at], _collected(args[at], input_of), *args[at + 1:])
        if check is not None:
            check(*args[at:], **kwargs)
        result = func(*args, **kwargs)
        if (len(result) if type(result) is str else _size(result)) > MAX_CHARS:
            raise too_big(_size(result), result_of)
        if over_time():
            raise refuse(TOO_LONG)
        return result

    @wraps(func)
    def run_map(*args: Any, **kwargs: Any) -> Any:
        return _map_budget(func(*args, **kwargs))
    return run_map if name == "map" else run


def _map_budget(items):
    """`map` makes new values: what it yields, all together, stays within the budget."""
    size = 0
    for item in items:
        size += _size(item)
        if size > MAX_CHARS:
            raise too_big(size, "what this `map` makes")
        yield item


# -- str and int methods called from a template -----------------------------------------------------

def _widths(owner: Any, *args: Any, **kwargs: Any) -> None:
    for value in chain(args, kwargs.values()):
        check_width(value, "this padding or to_bytes")


def _expandtabs(owner: Any, tabsize: Any = 8) -> None:
    size = len(owner) + owner.count("\t") * (tabsize if isinstance(tabsize, int) else 0)
    if size > MAX_CHARS:
        raise too_big(size, "this expandtabs")


def _translate(owner: Any, table: Any = None, *_args: Any) -> None:
    if isinstance(table, dict):
        longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
        if len(owner) * longest > MAX_CHARS:
            raise too_big(len(owner) * longest, "this translate")


# the methods of a text or a number that allocate what their arguments say
_METHOD_CHECKS: dict[str, Callable[..., None]] = {
    "center": _widths, "ljust": _widths, "rjust": _widths, "zfill": _widths,
    "to_bytes": _widths,
    "replace": lambda owner, old="", new="", count=-1: _replaced(owner, old, new, count),
    "join": lambda owner, items=(), *_: _joined(items, owner),
    "expandtabs": _expandtabs, "translate": _translate,
    "format": lambda owner, *args, **kwargs: check_format(
        owner, {**kwargs, **dict(enumerate(args))}),
    "format_map": lambda owner, mapping=None, *_: check_format(owner, mapping or {}),
}


def check_method(obj: Any, owner: Any, args: tuple, kwargs: dict) -> None:
    """`obj` (a callable; `owner` its `__self__`) called from a template: refused first
    if it is a method of a text or a number that would allocate beyond the budget."""
    if owner is None:
        obj = getattr(obj, "__wrapped__", None)           # the sandbox wraps str.format
        owner = getattr(obj, "__self__", None)
    if isinstance(owner, (str, int)):
        check = _METHOD_CHECKS.get(getattr(obj, "__name__", ""))
        if check is not None and (isinstance(owner, str) or check is _widths):
            check(owner, *args, **kwargs)
