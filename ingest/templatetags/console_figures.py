"""``{% headline_figures as figures %}`` for the admin index."""

from __future__ import annotations

from django import template

from ingest import console

register = template.Library()


@register.simple_tag
def headline_figures() -> dict:
    return console.headline_figures()
