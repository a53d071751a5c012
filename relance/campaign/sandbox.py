"""The sandbox every template renders in: Jinja2's, under the render budget
(relance/campaign/budget.py says what it is and holds the checks).

The budget is enforced where a template can spend: each loop's iterable, each included
template and each `~` go through a filter of the budget (rewritten so as it is compiled),
the operators that multiply a size are intercepted (`call_binop`), every call is timed and
checked (`call`), every filter is wrapped (`budget.budgeted_filter`), and the output is
counted as it streams (`concat`, which Jinja2 uses for a render and every buffer).
"""

from __future__ import annotations

from itertools import islice
from typing import Any, Callable

from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

from relance.campaign import budget
from relance.campaign.budget import (MAX_CHARS, MAX_RANGE, SHORT_LOOP, TOO_LONG,
                                     budgeted_filter, check_format, check_method, check_power,
                                     check_product, check_size, check_width, over_time,
                                     refuse, too_big)

_CHUNKS = 64               # output pieces counted at once (each is one value at most)


# -- loops, includes and concatenations, rewritten as they are compiled ------------------------

_LOOP, _CONCAT, _INCLUDE = "relance_budget_loop", "relance_budget_concat", "relance_budget_include"


def _loop(iterable: Any) -> Any:
    """A `{% for %}`'s iterable: timed as it starts; a long one timed as it goes too."""
    if over_time():
        raise refuse(TOO_LONG)
    if isinstance(iterable, (list, tuple, dict, str)) and len(iterable) <= SHORT_LOOP:
        return iterable
    return _timed(iterable)


def _timed(iterable: Any):
    n = 0
    for item in iterable:
        n += 1
        if not n % SHORT_LOOP and over_time():
            raise refuse(TOO_LONG)
        yield item


def _concat(value: Any) -> Any:
    return check_size(value, "this text (`~`)")


def _include(name: Any) -> Any:
    """An `{% include %}`'s template name: timed (a template including itself)."""
    if over_time():
        raise refuse(TOO_LONG)
    return name


class _Budgeted(NodeTransformer):
    """Every loop's iterable, included template and `~` go through the budget's filters."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP, [], [], None, None, lineno=node.iter.lineno)
        return node

    def visit_Include(self, node: nodes.Include) -> nodes.Node:
        node.template = nodes.Filter(node.template, _INCLUDE, [], [], None, None,
                                     lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, _CONCAT, [], [], None, None, lineno=node.lineno)


class _CodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame=None) -> None:
        node = _Budgeted().visit(node)
        node.set_environment(self.environment)
        super().visit_Template(node, frame)


# -- the environment ------------------------------------------------------------------------------

class _Namespace(Namespace):
    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, check_size(value, f"`{name}`"))


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise refuse(f"range() of {len(numbers):,} items: a template may loop at most "
                      f"{MAX_RANGE:,} times over a range (its time budget); loop over the "
                      "learner's own data instead")
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    check_width(n * max * 10, "this lipsum")
    return generate_lorem_ipsum(n, html, min, max)


class BudgetedEnvironment(SandboxedEnvironment):
    """Jinja2's sandbox under the render budget; `filters` are added to Jinja2's own, all
    of them under the budget."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, *args: Any, filters: dict[str, Callable] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals.update(range=_range, namespace=_Namespace, lipsum=_lipsum)
        self.filters.update(filters or {})
        self.filters = {name: budgeted_filter(name, func) for name, func in self.filters.items()}
        self.filters.update({_LOOP: _loop, _CONCAT: _concat, _INCLUDE: _include})

    def concat(self, chunks: Any) -> str:
        """A buffer (a macro's, a `{% set %}` block's) or a render's output, counted as it
        streams; a render's clock starts here (Template.render's one call)."""
        if isinstance(chunks, list):
            size = sum(map(len, chunks))
            if size > MAX_CHARS:
                raise too_big(size, "this block")
            return "".join(chunks)
        started = budget.start()       # a render inside a render: the first's clock
        try:
            parts: list[str] = []
            size = 0
            while True:
                # joined a few dozen pieces at a time, and counted as joined (most renders
                # are one part): the output never grows far past the budget in memory
                batch = list(islice(chunks, _CHUNKS))
                part = "".join(batch)
                size += len(part)
                if size > MAX_CHARS:
                    raise refuse(f"this template's output passed {MAX_CHARS:,} characters, "
                                 "the most one rendered template may hold (its size "
                                 "budget): a loop too long or a repetition too large?", chunks)
                parts.append(part)
                if len(batch) < _CHUNKS:
                    return part if len(parts) == 1 else "".join(parts)
        finally:
            if started:
                budget.stop()

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            check_product(left, right)
        elif operator == "**":
            check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            check_format(left, right)
        result = self.binop_table[operator](left, right)
        if operator == "+":
            check_size(result, "this sum (`+`)")
        return result

    def call(self, context, obj, /, *args: Any, **kwargs: Any) -> Any:
        if over_time():                                # a macro calling itself
            raise refuse(TOO_LONG)
        owner = getattr(obj, "__self__", None)
        check_method(obj, owner, args, kwargs)
        result = SandboxedEnvironment.call(self, context, obj, *args, **kwargs)
        if type(result) is not bool:
            check_size(result, "the result of this call")
        if isinstance(owner, (list, dict, set)):       # append, extend, update ...
            check_size(owner, "this list")
        return result
