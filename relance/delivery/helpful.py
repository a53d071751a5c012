""""Was this helpful?" in a message (`helpful: true`): its two signed links (links.py) are
given to its templates as `helpful_yes_url` and `helpful_no_url`; a message whose rendered
text (or HTML) shows neither gets a short question with both at its end, in the message's
language, so that a designer who only ticks the option still asks it. `relance serve`
records the answers (feedback/helpful.py).
"""

from __future__ import annotations

import html as html_lib
import re

from relance.delivery import links

_QUESTION = {
    "fr": ("Ce message vous a-t-il été utile ?", "Oui", "Non"),
    "en": ("Was this message helpful?", "Yes", "No"),
}
_BODY_END = re.compile(r"</body\s*>", re.I)


def urls(message_id: str) -> dict[str, str]:
    return {"helpful_yes_url": links.helpful_url(message_id, "yes"),
            "helpful_no_url": links.helpful_url(message_id, "no")}


def _words(locale: str) -> tuple[str, str, str]:
    return _QUESTION.get((locale or "")[:2].lower(), _QUESTION["en"])


def with_links(text: str, html: str | None, ctx: dict, locale: str) -> tuple[str, str | None]:
    """The rendered text and HTML, each with the question appended unless it already shows
    one of the links (the designer placed them)."""
    yes, no = ctx["helpful_yes_url"], ctx["helpful_no_url"]
    question, yes_word, no_word = _words(locale)
    if yes not in text and no not in text:
        colon = " :" if (locale or "").startswith("fr") else ":"     # French typography
        text = text.rstrip("\n") + f"\n\n{question}\n{yes_word}{colon} {yes}\n{no_word}{colon} {no}\n"
    if html is not None and html_lib.escape(yes) not in html and yes not in html \
            and html_lib.escape(no) not in html and no not in html:
        block = (f'<p style="margin-top:24px;font-size:14px;">{html_lib.escape(question)} '
                 f'<a href="{html_lib.escape(yes)}">{yes_word}</a> · '
                 f'<a href="{html_lib.escape(no)}">{no_word}</a></p>')
        ends = list(_BODY_END.finditer(html))
        html = (html[:ends[-1].start()] + block + "\n" + html[ends[-1].start():]) if ends \
            else html + "\n" + block
    return text, html
